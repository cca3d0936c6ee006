//! A container's output, kept as `<container dir>/container.log` in docker's json-file
//! format (moby `daemon/logger/jsonfilelog`): one JSON object per line,
//! `{"log":"…\n","stream":"stdout","time":"2026-01-02T03:04:05.123456789Z"}`. Whoever
//! owns the running container (a foreground `run`, a detached monitor) appends; `logs`
//! reads, and follows while the owner still writes. Each entry is one `write(2)` on an
//! `O_APPEND` file, so a reader sees whole lines, or a last line still being written,
//! which it leaves for its next read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};

use crate::store::Store;

/// Which of the command's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// The line with its `\n`; a last line cut by the command's exit has none.
    pub log: String,
    pub stream: Stream,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// docker's json-file splits a line longer than this into several entries.
const MAX_LINE: usize = 16 * 1024;

/// Appends a running container's output, a line per entry.
pub struct LogWriter {
    file: File,
    /// Bytes of an unfinished line, per stream.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs every complete line of `bytes` (with what came before it on that stream).
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let i = stream as usize;
        for &b in bytes {
            self.partial[i].push(b);
            if b == b'\n' || self.partial[i].len() >= MAX_LINE {
                let line = std::mem::take(&mut self.partial[i]);
                self.entry(stream, &line)?;
            }
        }
        Ok(())
    }

    /// Logs the unfinished lines, when the command has ended.
    pub fn finish(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.entry(stream, &line)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        };
        let mut json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        json.push(b'\n');
        self.file.write_all(&json)
    }
}

/// Reads a log from a position on, whole lines only.
pub struct LogReader {
    file: File,
    pending: Vec<u8>,
}

impl LogReader {
    /// `None` when the container never logged anything.
    pub fn open(path: &Path) -> io::Result<Option<LogReader>> {
        match File::open(path) {
            Ok(file) => Ok(Some(LogReader {
                file,
                pending: Vec::new(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entries written since the last call. Lines that are not docker's JSON are
    /// skipped: the file is ours, but a reader must not fail on a torn last line.
    pub fn read_new(&mut self) -> io::Result<Vec<LogEntry>> {
        self.file.read_to_end(&mut self.pending)?;
        let end = match self.pending.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => return Ok(Vec::new()),
        };
        let whole: Vec<u8> = self.pending.drain(..end).collect();
        Ok(whole
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect())
    }
}

impl Store {
    /// Where the container's output is logged.
    pub fn container_log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("container.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_per_stream_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path).unwrap();
        let mut r = LogReader::open(&path).unwrap().unwrap();
        w.write(Stream::Stdout, b"one\ntw").unwrap();
        w.write(Stream::Stderr, b"err\n").unwrap();
        let got = r.read_new().unwrap();
        let texts: Vec<(&str, Stream)> = got.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            texts,
            [("one\n", Stream::Stdout), ("err\n", Stream::Stderr)]
        );
        w.write(Stream::Stdout, b"o\n").unwrap();
        w.write(Stream::Stdout, b"end").unwrap();
        w.finish().unwrap();
        let got = r.read_new().unwrap();
        let texts: Vec<&str> = got.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(texts, ["two\n", "end"]);
        // docker's own field names and time format.
        let line = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        assert_eq!(first["stream"], "stdout");
        let time = first["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "{time}");
        // A torn last line waits for the rest.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"log\":\"x")
            .unwrap();
        assert!(r.read_new().unwrap().is_empty());
    }
}
