//! Reading case files: one case per file, YAML (`.yaml`, `.yml`) or TOML (`.toml`); a directory holds any number
//! (other files in it are passed over). Every error names the file, and the line and column when the parser knows
//! them.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    definition::{check_name, CaseDefinition, WrittenCase, DEFAULT_STEP_TIMEOUT},
    error::CaseFileError,
};

/// The largest case file read.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most case files in a directory.
const MAX_FILES: usize = 1000;

/// A case file's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
}

impl Format {
    /// The format of a file, by its extension.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// A case read from a file.
#[derive(Clone, Debug)]
pub struct CaseFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The case.
    pub definition: CaseDefinition,
}

/// Reads the case file `path`, or every case file of the directory `path` (sorted by name). Case names must be
/// unique across the files.
pub fn load(path: &Path) -> Result<Vec<CaseFile>, CaseFileError> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| CaseFileError::new(path, format!("cannot read it: {error}")).caused_by(error))?;
    let files = if metadata.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|error| CaseFileError::new(path, format!("cannot list it: {error}")).caused_by(error))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && Format::of_path(p).is_some())
            .collect();
        files.sort();
        if files.len() > MAX_FILES {
            return Err(CaseFileError::new(path, format!("more than {MAX_FILES} case files")));
        }
        if files.is_empty() {
            return Err(CaseFileError::new(path, "no case file (.yaml, .yml, .toml) in this directory"));
        }
        files
    } else {
        vec![path.to_owned()]
    };
    let mut cases = Vec::with_capacity(files.len());
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let case = read(&file)?;
        if let Some(first) = names.insert(case.definition.name().to_owned(), file.clone()) {
            let message = format!("case `{}` is also declared in {}", case.definition.name(), first.display());
            return Err(CaseFileError::new(&file, message));
        }
        cases.push(case);
    }
    Ok(cases)
}

/// Reads one case file.
pub fn read(path: &Path) -> Result<CaseFile, CaseFileError> {
    let format =
        Format::of_path(path).ok_or_else(|| CaseFileError::new(path, "a case file ends in .yaml, .yml or .toml"))?;
    let size = std::fs::metadata(path)
        .map_err(|error| CaseFileError::new(path, format!("cannot read it: {error}")).caused_by(error))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(CaseFileError::new(path, format!("over {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| CaseFileError::new(path, format!("cannot read it: {error}")).caused_by(error))?;
    let definition = parse(&text, format, path)?;
    Ok(CaseFile { path: path.to_owned(), definition })
}

/// Parses a case file's text (`file` names it in errors).
pub fn parse(text: &str, format: Format, file: &Path) -> Result<CaseDefinition, CaseFileError> {
    let written: WrittenCase = match format {
        Format::Yaml => serde_yaml::from_str(text).map_err(|error| {
            let (line, column) = error.location().map(|l| (l.line(), l.column())).unzip();
            let message = strip_position(&error.to_string());
            CaseFileError::new(file, message).at(line, column).caused_by(error)
        })?,
        Format::Toml => toml::from_str(text).map_err(|error| {
            let (line, column) = error.span().map(|span| line_column(text, span.start)).unzip();
            CaseFileError::new(file, error.message().to_owned()).at(line, column).caused_by(error)
        })?,
    };
    define(written, text).map_err(|(message, needle)| {
        let line = needle.and_then(|needle| needle.line_in(text));
        CaseFileError::new(file, message).at(line, None)
    })
}

/// The case of a file read: what is checked across its parts. An error comes with a text to look for, to name
/// its line.
fn define(written: WrittenCase, _text: &str) -> Result<CaseDefinition, (String, Option<Needle>)> {
    let name = written.name;
    check_name("case", &name).map_err(|m| (m, Some(Needle::first(&["name"]))))?;
    let settings = written.settings.into_settings(&name).map_err(|m| (m, Some(Needle::first(&["settings"]))))?;
    let default_timeout = written.timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
    if written.steps.is_empty() {
        return Err(("a case needs at least one step".into(), Some(Needle::first(&["steps"]))));
    }
    let steps = written
        .steps
        .into_iter()
        .enumerate()
        .map(|(index, step)| step.into_step(default_timeout).map_err(|m| (format!("step {}: {m}", index + 1), None)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen: Vec<&str> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        for stage in &step.stages {
            if seen.contains(&stage.signal.as_str()) {
                let message = format!("step {}: signal `{}` is awaited twice", index + 1, stage.signal);
                return Err((message, Some(Needle::last(&["signal", &stage.signal]))));
            }
            seen.push(&stage.signal);
        }
        // A stage compares with stages before its step, or before it in its own group.
        for (position, stage) in step.stages.iter().enumerate() {
            for referred in stage.assertions.iter().filter_map(|a| a.stage_referred()) {
                let earlier = seen.len() - step.stages.len() + position;
                if !seen[..earlier].contains(&referred) {
                    let message = format!(
                        "step {}: `equals_stage` refers to `{referred}`, which is not a stage before `{}`",
                        index + 1,
                        stage.signal
                    );
                    return Err((message, Some(Needle::first(&["equals_stage", referred]))));
                }
            }
        }
    }
    let fake_request = match written.fake_request {
        Some(fake) => Some(
            fake.into_fake_request()
                .map_err(|m| (format!("fake_request: {m}"), Some(Needle::first(&["fake_request"]))))?,
        ),
        None => None,
    };
    if fake_request.is_some() && settings.frequency.is_none() {
        return Err((
            "a fake_request needs settings.frequency (how often it is made)".into(),
            Some(Needle::first(&["fake_request"])),
        ));
    }
    for url in &written.alert_webhooks {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err((
                format!("alert webhook `{url}` must start with http:// or https://"),
                Some(Needle::first(&[url])),
            ));
        }
    }
    if settings.frequency.is_some_and(|f| f < Duration::from_millis(10)) {
        return Err(("settings.frequency is at least 10ms".into(), Some(Needle::first(&["frequency"]))));
    }
    Ok(CaseDefinition { settings, alert_webhooks: written.alert_webhooks, steps, fake_request })
}

/// serde_yaml's message without its own " at line L column C" (the error has them as fields).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The line and column (from 1) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before.iter().rposition(|b| *b == b'\n').map_or(0, |newline| newline + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// What to look for to name the line of an error found after parsing: a line holding every word, the first or
/// the last such line.
struct Needle {
    words: Vec<String>,
    last: bool,
}

impl Needle {
    fn first(words: &[&str]) -> Self {
        Needle { words: words.iter().map(|w| (*w).to_owned()).collect(), last: false }
    }

    fn last(words: &[&str]) -> Self {
        Needle { last: true, ..Needle::first(words) }
    }

    /// The line (from 1).
    fn line_in(&self, text: &str) -> Option<usize> {
        let mut lines =
            text.lines().enumerate().filter(|(_, line)| self.words.iter().all(|w| line.contains(w.as_str())));
        let found = if self.last { lines.last() } else { lines.next() };
        found.map(|(index, _)| index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_offsets() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(strip_position("steps[0]: bad at line 3 column 5"), "steps[0]: bad");
    }
}
