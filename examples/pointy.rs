//! Checks a pointy text: prints the pipeline it builds, one step a line, or the first error with a caret.

use std::io::Read as _;
use std::process::ExitCode;

use conveyor::pointy;
use conveyor::{Pipeline, Task};

const USAGE: &str = "\
usage: pointy FILE
       pointy -            (read the text from stdin)

Parses FILE as pointy text, accepting every task name, and prints the
pipeline it builds, one step a line, in the notation of the pointy corpus:

    Check*2 ; then=Done ok=Go fail=Fix sink=Done

Exits 0 when the text is valid. Otherwise prints the first error as
LINE:COLUMN: MESSAGE, then the line with a caret under the column, and
exits 1. Exits 2 on a usage or read error.

  --help, -h   print this and exit";

/// What the command line asks for.
enum Command {
    Help,
    Check(String),
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut path = None;
    for arg in args {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            // `-` alone is stdin; anything else starting with `-` is a flag.
            flag if flag.len() > 1 && flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ if path.is_some() => return Err(format!("one file at a time; {arg} is one too many")),
            _ => path = Some(arg),
        }
    }
    path.map(Command::Check)
        .ok_or_else(|| "which file? (`-` for stdin)".to_owned())
}

/// The text, read whole. Bytes that are not UTF-8 become U+FFFD, which
/// the parser then reports as an unexpected character where it stands.
fn read(path: &str) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    if path == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(path)?;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn main() -> ExitCode {
    let path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Check(path)) => path,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pointy: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let text = match read(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("pointy: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    // Every name stands for a task that does nothing: only the shape counts.
    let tasks = |name: &str| Some(Task::from_fn(name, |_| Ok(())));
    match Pipeline::parse(&text, &tasks) {
        Ok(pipeline) => {
            print!("{}", pointy::outline(&pipeline));
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The first line is the spec's `LINE:COLUMN: MESSAGE`; the
            // alternate form adds the line and its caret.
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
