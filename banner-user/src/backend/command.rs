//! Running nft, iptables and ipset. Every shell-out of the netfilter backends goes through a
//! [`CommandRunner`], so the exact command lines and batch texts are tested without root by
//! a recording runner.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use super::BackendError;

/// One command as run: program, arguments, and what was fed on stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Call {
    pub fn line(&self) -> String {
        format!("{} {}", self.program, self.args.join(" "))
    }
}

pub trait CommandRunner: Send {
    /// Run `program args`, feeding `stdin`; stdout on success, an error naming the command
    /// and its stderr otherwise.
    fn run(
        &mut self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, BackendError>;
}

/// Runs real commands.
#[derive(Debug, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(
        &mut self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, BackendError> {
        let command = format!("{program} {}", args.join(" "));
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BackendError::Command {
                command: command.clone(),
                detail: if e.kind() == std::io::ErrorKind::NotFound {
                    format!("{program} is not installed")
                } else {
                    e.to_string()
                },
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| BackendError::Command {
                    command: command.clone(),
                    detail: format!("writing its input: {e}"),
                })?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| BackendError::Command {
                command: command.clone(),
                detail: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(BackendError::Command {
            command,
            detail: format!("{} ({})", stderr.trim(), out.status),
        })
    }
}

/// Scripted answers: (substring of the command line, stdout or error message).
#[cfg(test)]
type Answers = std::sync::Arc<std::sync::Mutex<Vec<(String, Result<String, String>)>>>;

/// Records every call and answers from a script: for tests.
#[cfg(test)]
#[derive(Clone, Debug, Default)]
pub struct RecordingRunner {
    pub calls: std::sync::Arc<std::sync::Mutex<Vec<Call>>>,
    /// (substring of the command line, stdout or error) answers, first match wins; no match
    /// means success with empty output.
    pub answers: Answers,
}

#[cfg(test)]
impl RecordingRunner {
    /// Answer commands containing `when` with `with` (replacing an earlier answer for it).
    pub fn answer(&self, when: &str, with: Result<&str, &str>) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.retain(|(w, _)| w != when);
        answers.push((
            when.to_string(),
            with.map(str::to_string).map_err(str::to_string),
        ));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
impl CommandRunner for RecordingRunner {
    fn run(
        &mut self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, BackendError> {
        let call = Call {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: stdin.map(str::to_string),
        };
        let line = call.line();
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        match answers
            .iter()
            .find(|(when, _)| line.contains(when.as_str()))
        {
            Some((_, Ok(out))) => Ok(out.clone()),
            Some((_, Err(e))) => Err(BackendError::Command {
                command: line,
                detail: e.clone(),
            }),
            None => Ok(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named() {
        let err = SystemRunner
            .run("banner-no-such-program", &["x"], None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`banner-no-such-program x` failed: banner-no-such-program is not installed"
        );
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let err = SystemRunner
            .run("sh", &["-c", "echo nope >&2; exit 3"], None)
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(err.to_string().contains("exit status: 3"), "{err}");
        let out = SystemRunner.run("cat", &[], Some("fed")).unwrap();
        assert_eq!(out, "fed");
    }
}
