//! Parser throughput on a large real-world-style Dockerfile.
//!
//! The input is generated: a realistic multi-stage section (long `RUN` continuations
//! with comments inside, ENV/LABEL pairs, COPY/RUN flags, a heredoc, JSON forms)
//! repeated until the file is about 1 MiB, so the figure is MB/s of typical content.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rbuild_parser::{instruction, syntax};
use std::hint::black_box;

const SECTION: &str = r#"
# Build stage {n}: compile the app with cached dependencies.
FROM --platform=$BUILDPLATFORM golang:1.22-bookworm AS build{n}
ARG TARGETOS TARGETARCH VERSION=1.{n}.0
ENV CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly" \
    PATH=/go/bin:/usr/local/go/bin:$PATH
LABEL org.opencontainers.image.title="app{n}" org.opencontainers.image.version=$VERSION
WORKDIR /src
RUN set -eux; \
    apt-get update; \
    # tools needed for the build only
    apt-get install -y --no-install-recommends \
        ca-certificates curl git make gcc libc6-dev \
        pkg-config libssl-dev; \
    rm -rf /var/lib/apt/lists/*
COPY --link go.mod go.sum ./
RUN --mount=type=cache,id=gomod{n},target=/go/pkg/mod,sharing=locked \
    --mount=type=secret,id=netrc,target=/root/.netrc,required=false \
    go mod download
COPY --chown=1000:1000 --chmod=0644 --exclude=*.md . .
RUN --network=none --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags "-s -w -X main.version=$VERSION" -o /out/app ./cmd/app
COPY <<EOF /etc/app/config.yaml
listen: ":8080"
log_level: info
EOF

FROM gcr.io/distroless/static-debian12:nonroot AS final{n}
COPY --from=build{n} /out/app /usr/local/bin/app
EXPOSE 8080/tcp 9090
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ["/usr/local/bin/app", "healthcheck"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve", "--config", "/etc/app/config.yaml"]
"#;

fn input() -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG GO_VERSION=1.22\n");
    let mut n = 0;
    while s.len() < 1 << 20 {
        s.push_str(&SECTION.replace("{n}", &n.to_string()));
        n += 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    let src = input();
    let mut g = c.benchmark_group("dockerfile");
    g.throughput(Throughput::Bytes(src.len() as u64));
    g.bench_function("syntax", |b| {
        b.iter(|| syntax::parse(black_box(src.as_bytes()), "Dockerfile").unwrap())
    });
    g.bench_function("syntax+typed", |b| {
        b.iter(|| {
            let df = syntax::parse(black_box(src.as_bytes()), "Dockerfile").unwrap();
            instruction::from_dockerfile(&df, &src).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
