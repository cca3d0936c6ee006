use serde_json::json;

use super::*;

const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
];

fn images() -> Vec<Json> {
    vec![
        json!({"Repository": "busybox", "Tag": "latest", "ID": "3f57d9401f8d",
               "CreatedSince": "2 weeks ago", "Size": "4.26MB"}),
        json!({"Repository": "localhost:5000/some/long-name", "Tag": "<none>",
               "ID": "a1b2c3d4e5f6", "CreatedSince": "About an hour ago", "Size": "120MB"}),
    ]
}

#[test]
fn table_has_header_and_aligned_columns() {
    let out = render_items(
        r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
        HEADERS,
        &images(),
    )
    .unwrap();
    assert_eq!(
        out,
        concat!(
            "REPOSITORY                      TAG       IMAGE ID       CREATED             SIZE\n",
            "busybox                         latest    3f57d9401f8d   2 weeks ago         4.26MB\n",
            "localhost:5000/some/long-name   <none>    a1b2c3d4e5f6   About an hour ago   120MB\n",
        )
    );
}

#[test]
fn table_with_a_real_tab_and_unknown_header() {
    let out = render_items(
        "table {{.ID}}\t{{.Other}}",
        HEADERS,
        &[json!({"ID": "x", "Other": 1})],
    )
    .unwrap();
    assert_eq!(out, "IMAGE ID   \nx          1\n");
}

#[test]
fn header_keeps_titles_through_functions() {
    let out = render_items(
        r"table {{upper .Repository}}\t{{truncate .ID 3}}",
        HEADERS,
        &images()[..1],
    )
    .unwrap();
    assert_eq!(out, "REPOSITORY   IMAGE ID\nBUSYBOX      3f5\n");
}

#[test]
fn plain_template_has_no_header() {
    let out = render_items("{{.Repository}}:{{.Tag}}", HEADERS, &images()).unwrap();
    assert_eq!(
        out,
        "busybox:latest\nlocalhost:5000/some/long-name:<none>\n"
    );
    // Tabs are not aligned outside a table.
    let out = render_items(r"{{.ID}}\t{{.Size}}", HEADERS, &images()[..1]).unwrap();
    assert_eq!(out, "3f57d9401f8d\t4.26MB\n");
}

#[test]
fn json_is_one_object_per_line() {
    let out = render_items("json", HEADERS, &[json!({"b": 1, "a": "x"}), json!({})]).unwrap();
    assert_eq!(out, "{\"a\":\"x\",\"b\":1}\n{}\n");
    // `{{json .}}` is just a template.
    let out = render_items("{{json .Tag}}", HEADERS, &images()[..1]).unwrap();
    assert_eq!(out, "\"latest\"\n");
}

#[test]
fn errors_stop_everything() {
    let e = render_items("table {{.Nope}}", HEADERS, &images()).unwrap_err();
    assert!(e.to_string().starts_with("template parsing error:"), "{e}");
    assert!(render_items("{{.ID", HEADERS, &[]).is_err());
}

#[test]
fn no_items_prints_the_header_only() {
    let out = render_items(r"table {{.ID}}\t{{.Size}}", HEADERS, &[]).unwrap();
    assert_eq!(out, "IMAGE ID   SIZE\n");
}

#[test]
fn is_table_like_docker() {
    assert!(is_table("table"));
    assert!(is_table("table {{.ID}}"));
    assert!(is_table("tablex"), "docker checks the prefix only");
    assert!(!is_table("{{.ID}}"));
    assert!(!is_table("json"));
}

fn align(text: &str) -> String {
    let mut t = TableWriter::new();
    t.push_str(text);
    t.finish()
}

#[test]
fn tabwriter_elastic_tabstops() {
    // Minimum width 10, padding 3, last cell never padded.
    assert_eq!(align("a\tb\n"), "a         b\n");
    assert_eq!(align("abcdefgh\tb\n"), "abcdefgh   b\n");
    // No trailing newline: the last line is written as is.
    assert_eq!(align("a\tb\nc\td"), "a         b\nc         d");
    // A line without a tab ends the block: columns below are sized on their own.
    assert_eq!(
        align("longer-cell-here\tx\nplain\ny\tz\n"),
        "longer-cell-here   x\nplain\ny         z\n"
    );
    // Nested: column 1 is sized only over the lines that have a column 1.
    assert_eq!(
        align("a\tbbbbbbbbbbbbbb\tc\nd\te\n"),
        "a         bbbbbbbbbbbbbb   c\nd         e\n"
    );
    // Empty cells are padded like any other; a trailing tab makes a padded cell.
    assert_eq!(align("\tx\ny\t\n"), "          x\ny         \n");
    // Characters, not bytes.
    assert_eq!(align("héllo\tx\n"), "héllo     x\n");
    assert_eq!(align(""), "");
}

#[test]
fn table_writer_is_fmt_write() {
    use std::fmt::Write as _;
    let mut t = TableWriter::new();
    writeln!(t, "a\t{}", 1).unwrap();
    assert_eq!(t.finish(), "a         1\n");
}
