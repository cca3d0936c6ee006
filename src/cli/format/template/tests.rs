use serde_json::json;

use super::*;

fn image() -> Json {
    json!({
        "Id": "sha256:abc",
        "Parent": "",
        "Architecture": "amd64",
        "Size": 4261296,
        "Ratio": 0.5,
        "Negative": -3,
        "Config": {
            "Cmd": ["sh"],
            "Entrypoint": null,
            "Labels": {"a": "x<y>&z", "b": "2"},
            "Env": ["PATH=/bin", "A=1"]
        },
        "RootFS": {"Type": "layers", "Layers": ["sha256:l1", "sha256:l2"]}
    })
}

fn ok(template: &str) -> String {
    render(template, &image()).unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn err(template: &str) -> String {
    render(template, &image()).unwrap_err().to_string()
}

#[test]
fn fields_and_numbers() {
    assert_eq!(ok("{{.Architecture}}"), "amd64");
    assert_eq!(ok("{{.Size}}"), "4261296");
    assert_eq!(ok("{{.Negative}} {{.Ratio}}"), "-3 0.5");
    assert_eq!(ok("{{.RootFS.Type}}"), "layers");
    assert_eq!(ok(r#"{{".Size"}}"#), ".Size");
}

#[test]
fn json_is_compact_sorted_and_unescaped() {
    assert_eq!(
        ok("{{json .Config}}"),
        r#"{"Cmd":["sh"],"Entrypoint":null,"Env":["PATH=/bin","A=1"],"Labels":{"a":"x<y>&z","b":"2"}}"#
    );
    assert_eq!(ok("{{json .Size}}"), "4261296");
    assert_eq!(ok("{{json .Config.Entrypoint}}"), "null");
    assert_eq!(ok("{{json .Architecture}}"), r#""amd64""#);
}

#[test]
fn range_index_if() {
    assert_eq!(
        ok("{{range .RootFS.Layers}}{{.}} {{end}}"),
        "sha256:l1 sha256:l2 "
    );
    assert_eq!(ok(r#"{{index .Config.Labels "a"}}"#), "x<y>&z");
    assert_eq!(ok(r#"[{{index .Config.Labels "missing"}}]"#), "[]");
    assert_eq!(ok("{{index .Config.Cmd 0}}"), "sh");
    assert_eq!(
        ok("{{if .Parent}}has parent{{else}}no parent{{end}}"),
        "no parent"
    );
    assert_eq!(ok("{{if .Config.Entrypoint}}e{{else}}none{{end}}"), "none");
    let with_parent = json!({"Parent": "sha256:p"});
    assert_eq!(
        render("{{if .Parent}}{{.Parent}}{{end}}", &with_parent).unwrap(),
        "sha256:p"
    );
}

#[test]
fn docker_functions() {
    assert_eq!(ok(r#"{{join .Config.Env ","}}"#), "PATH=/bin,A=1");
    assert_eq!(ok(r#"{{join .Config.Labels ";"}}"#), "2;x<y>&z");
    assert_eq!(ok(r#"{{join .Config.Entrypoint ","}}"#), "");
    assert_eq!(
        ok(r#"{{range split "a:b:c" ":"}}[{{.}}]{{end}}"#),
        "[a][b][c]"
    );
    assert_eq!(ok(r#"{{len (split "abc" "")}}"#), "3");
    assert_eq!(
        ok(r#"{{lower "AbC"}} {{upper .Architecture}}"#),
        "abc AMD64"
    );
    assert_eq!(
        ok(r#"{{title "hello wide-world foo_bar"}}"#),
        "Hello Wide-World Foo_bar"
    );
    assert_eq!(
        ok(r#"{{truncate .Id 9}}|{{truncate "ab" 5}}"#),
        "sha256:ab|ab"
    );
    assert_eq!(ok(r#"[{{pad "x" 2 1}}][{{pad "" 2 1}}]"#), "[  x ][]");
    assert_eq!(ok(r#"{{println .Architecture}}"#), "amd64\n");
    assert_eq!(ok(r#"{{.Architecture | upper}}"#), "AMD64");
}

#[test]
fn errors_read_like_docker() {
    let e = err("{{.Nope}}");
    assert!(e.starts_with("template parsing error: "), "{e}");
    assert!(e.contains(r#"map has no entry for key "Nope""#), "{e}");
    assert_eq!(
        err("{{nosuchfunc .}}"),
        r#"template parsing error: template: function "nosuchfunc" not defined"#
    );
    assert_eq!(
        err("{{.A}}\n{{end}}"),
        "template parsing error: template: unexpected {{end}}"
    );
    let e = err("{{.Architecture");
    assert!(e.starts_with("template parsing error: template: "), "{e}");
    let e = err("{{upper .Size}}");
    assert!(e.contains("expected string"), "{e}");
    let e = err("{{index .Config.Cmd 5}}");
    assert!(e.contains("index out of range: 5"), "{e}");
}

#[test]
fn a_parsed_template_renders_many_values() {
    let t = Template::parse("{{.A}}-{{.B}}").unwrap();
    assert_eq!(t.render(&json!({"A": 1, "B": "x"})).unwrap(), "1-x");
    assert_eq!(t.render(&json!({"A": 2, "B": true})).unwrap(), "2-true");
}

#[test]
fn header_functions_keep_titles() {
    let t = Template::parse_header(r#"{{json .A}}|{{upper .B}}|{{truncate .C 1}}|{{pad .D 1 1}}"#)
        .unwrap();
    let header = json!({"A": "NAME", "B": "Tag", "C": "IMAGE ID", "D": "SIZE"});
    assert_eq!(t.render(&header).unwrap(), "NAME|Tag|IMAGE ID| SIZE ");
}

#[test]
fn values_print_as_go_prints_them() {
    assert_eq!(ok("{{.Config.Cmd}}"), "[sh]");
    assert_eq!(ok("{{.Config.Env}}"), "[PATH=/bin A=1]");
    assert_eq!(ok("{{.Config.Entrypoint}}"), "[]");
    assert_eq!(ok("{{.Config.Labels}}"), "map[a:x<y>&z b:2]");
    assert_eq!(
        ok("{{.RootFS}}"),
        "map[Layers:[sha256:l1 sha256:l2] Type:layers]"
    );
    assert_eq!(ok("{{.Size}} {{.Negative}} {{.Ratio}}"), "4261296 -3 0.5");
    // Through pipelines, parentheses, variables and trim markers too.
    assert_eq!(ok("{{.Config.Cmd | json}}"), r#"["sh"]"#);
    assert_eq!(ok("{{(index .RootFS.Layers 1)}}"), "sha256:l2");
    assert_eq!(ok("{{$c := .Config.Cmd}}<{{$c}}>"), "<[sh]>");
    assert_eq!(ok("a {{- .Config.Cmd -}} b"), "a[sh]b");
    assert_eq!(ok("{{range .Config.Env}}{{.}};{{end}}"), "PATH=/bin;A=1;");
    assert_eq!(
        ok(r#"{{with .RootFS}}{{.Layers}}{{else}}x{{end}}{{/* {{.Size}} */}}"#),
        "[sha256:l1 sha256:l2]"
    );
    // Delimiters inside strings are the string's.
    assert_eq!(ok(r#"{{printf "%s}}" .Architecture}}"#), "amd64}}");
    assert_eq!(ok("{{printf `{{%s` .Architecture}}"), "{{amd64");
}

#[test]
fn only_printing_actions_get_the_go_stage() {
    assert_eq!(go_printing("{{.A}}"), "{{.A | __goprint}}");
    assert_eq!(go_printing("{{- .A -}}"), "{{- .A | __goprint -}}");
    assert_eq!(go_printing("{{if .A}}{{end}}"), "{{if .A}}{{end}}");
    assert_eq!(
        go_printing("{{$x := .A}}{{$x = 1}}"),
        "{{$x := .A}}{{$x = 1}}"
    );
    assert_eq!(go_printing("{{$x}}"), "{{$x | __goprint}}");
    assert_eq!(go_printing("{{/* c */}}"), "{{/* c */}}");
    assert_eq!(go_printing("{{ \"}}\" }}"), "{{ \"}}\" | __goprint}}");
    // Unterminated: left for the parser to report.
    assert_eq!(go_printing("a {{.A"), "a {{.A");
}
