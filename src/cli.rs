//! The whole command-line surface (clap derive). Converts the arguments into plain option
//! structs so nothing below this module imports clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::HptopError;
use crate::model::snapshot::Mode as ShareMode;
use crate::modes::{
    DumpOptions, InputWindow, Mode, PsOptions, RecordOptions, ReplayOptions, ReportOptions,
};
use crate::record::window::TimeSpec;
use crate::report::{Format, StackFormat, StackOutput, Weight};
use crate::session::{RecordTo, SamplingOptions, Target};

/// hptop: what a running Python process is doing — its Python stacks joined with the
/// kernel's counters (CPU, memory, page faults, context switches, I/O), per thread.
#[derive(Debug, Parser)]
#[command(name = "hptop", version, args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Reading another process needs root or CAP_SYS_PTRACE: run with sudo.\n\
Examples:\n  sudo hptop                 (pick a Python process)\n  sudo hptop report --pid 1234 --duration 10 --subprocesses\n  hptop report -- python3 script.py\n  sudo hptop dump --pid 1234\n  hptop ps"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    recording: RecordArgs,
}

impl Cli {
    /// The subcommand's name (`report`, `diff`...), `None` for the live view: usage errors
    /// point at its own help.
    pub fn subcommand(&self) -> Option<&'static str> {
        Some(match self.command.as_ref()? {
            Command::Report(_) => "report",
            Command::Record(_) => "record",
            Command::Replay(_) => "replay",
            Command::Diff(_) => "diff",
            Command::Dump(_) => "dump",
            Command::Ps(_) => "ps",
            Command::Serve(_) => "serve",
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sample for a while, then print a report of functions, threads and process figures
    /// (or make one from a recording: --input FILE).
    Report(ReportArgs),
    /// Record the target's samples to a file, headless (for nohup, systemd, tmux), until
    /// the duration, the target's exit, ^C or SIGTERM; `report --input` and `replay` read it.
    Record(RecordCmdArgs),
    /// The live view over a recording: every pane, for any moment or range of it.
    Replay(ReplayArgs),
    /// What changed between two windows: each side a recording, a window of one
    /// (FILE@FROM..TO, e.g. job.hptop@1h..1h10m), or a JSON report (--stacks for flame graphs).
    Diff(DiffArgs),
    /// Print every thread's stack and counters once.
    Dump(DumpArgs),
    /// List the Python processes on this machine.
    Ps(PsArgs),
    /// Serve metrics (Prometheus, /metrics), profiles (pprof, /debug/pprof/profile) and
    /// reports (/report) of watched processes over HTTP, headless, until ^C or SIGTERM.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("watch").required(true).args(["pid", "pattern"])))]
struct ServeArgs {
    /// Python processes to watch (repeat, or separate with commas).
    #[arg(long, short = 'p', value_name = "PID", value_delimiter = ',')]
    pid: Vec<u32>,
    /// Watch every Python process whose command line matches REGEX, as it appears
    /// (workers restarted by a supervisor are picked up; exited ones dropped).
    #[arg(long = "match", id = "pattern", value_name = "REGEX")]
    pattern: Option<String>,
    /// Follow each watched process's Python children too.
    #[arg(long, short = 's')]
    subprocesses: bool,
    /// asyncio programs (Python 3.11+): profiles root the stacks of code that runs in a task
    /// at the task and the tasks awaiting it.
    #[arg(long = "async")]
    async_stacks: bool,
    /// Address to listen on. Another than loopback exposes function names, file paths and
    /// command lines to whoever can reach it.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9464")]
    listen: String,
    /// Samples per second per process (1 to 1000; continuous profilers use 19 to 100).
    #[arg(long, short = 'r', value_name = "HZ", default_value_t = 20.0)]
    rate: f64,
    /// Function series per process in /metrics (the rest in function="(other)").
    #[arg(long, value_name = "N", default_value_t = 20)]
    top_functions: usize,
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// Process id of the Python process to inspect.
    #[arg(long, short = 'p', value_name = "PID", conflicts_with = "command")]
    pid: Option<u32>,
    /// Command to launch and inspect (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
struct SamplingArgs {
    /// Samples per second (1 to 1000).
    #[arg(
        long,
        short = 'r',
        value_name = "HZ",
        default_value_t = 100.0,
        allow_negative_numbers = true
    )]
    rate: f64,
    /// Pause the target's threads during each sample for exact stacks (costs the target
    /// time; the default never pauses it).
    #[arg(long)]
    blocking: bool,
    /// What a function's share counts: cpu (on-CPU time from schedstat, the default),
    /// samples (samples of threads in state R, as py-spy top), gil (samples of the thread
    /// holding the GIL, as py-spy --gil), wall (all samples, idle too).
    #[arg(long, value_enum, default_value_t = ModeArg::Cpu)]
    mode: ModeArg,
    /// The same as --mode wall: count idle threads in function figures.
    #[arg(long)]
    idle: bool,
    /// Include native (C) frames; needs hptop built with `--features unwind`.
    #[arg(long)]
    native: bool,
    /// asyncio programs (Python 3.11+): root the stacks of code that runs in a task at the
    /// task and the tasks awaiting it, instead of the event loop's own frames.
    #[arg(long = "async")]
    async_stacks: bool,
    /// Follow the target's Python child processes (multiprocessing pools, workers) as they
    /// come and go.
    #[arg(long, short = 's')]
    subprocesses: bool,
    /// With a launched command: write its standard output and error to FILE (the live view
    /// hides them otherwise; a report passes its output to standard error).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

/// Recording alongside the live view or a report.
#[derive(Debug, Args, Clone)]
struct RecordArgs {
    /// Also record the samples to FILE (see `hptop record`; read with `report --input`).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Keep a recording within SIZE (e.g. 200M, 2G), dropping its oldest seconds.
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
    /// Replace an existing output or recording file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct RecordCmdArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// The recording file (a symbolic link is refused; an existing file only with --force).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
    /// Stop after SECS seconds (default: until the target exits, ^C or SIGTERM).
    #[arg(long, short = 'd', value_name = "SECS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Keep the file within SIZE (e.g. 200M, 2G), dropping its oldest seconds.
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The base side.
    #[arg(value_name = "BASE")]
    base: String,
    /// The new side.
    #[arg(value_name = "NEW")]
    new: String,
    /// text (functions whose share changed most), json, or flamegraph (differential SVG).
    #[arg(long, short = 'f', value_enum, default_value_t = DiffFormatArg::Text)]
    format: DiffFormatArg,
    /// What a function's share counts (as for report).
    #[arg(long, value_enum, default_value_t = ModeArg::Cpu)]
    mode: ModeArg,
    /// With flamegraph: what a stack's width counts.
    #[arg(long, default_value = "samples", value_parser = weight_parser())]
    weight: Weight,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormatArg {
    Text,
    Json,
    Flamegraph,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording to replay.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// What a function's share counts (as for the live view).
    #[arg(long, value_enum, default_value_t = ModeArg::Cpu)]
    mode: ModeArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Cpu,
    Samples,
    Gil,
    Wall,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

/// Report formats: the plain ones, and stack outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormatArg {
    Text,
    Json,
    /// Folded stacks (`frame;frame COUNT`), for flamegraph.pl, inferno, Pyroscope.
    Collapsed,
    /// An interactive SVG flame graph.
    Flamegraph,
    /// speedscope's file format (one profile per thread).
    Speedscope,
    /// pprof's profile.proto, gzipped (go tool pprof, Pyroscope, Parca): every figure a
    /// sample type, --weight the default one.
    Pprof,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
}

#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags, one per bool"
)]
struct ReportArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Length of the report window in seconds (a launched command that exits earlier ends it;
    /// default 10, or with --every until the target exits or a signal).
    #[arg(long, short = 'd', value_name = "SECS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Write one report per PERIOD (90s, 10m, 1h) until the duration, the target's exit, ^C
    /// or SIGTERM. With -o FILE they are FILE.1, FILE.2, ...; or `{time}` in FILE stands for
    /// each report's local time (`YYYYmmddTHHMMSS`), e.g. -o 'job-{time}.json'. SIGUSR1 writes
    /// one at once.
    #[arg(long, value_name = "PERIOD")]
    every: Option<String>,
    /// Output format: text, json, or stacks (collapsed, flamegraph, speedscope, pprof).
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormatArg::Text)]
    format: ReportFormatArg,
    /// Same as --format json (py-spy's flag).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// With a stack format: what a stack's width counts (default: samples, as the
    /// mode counts them; cpu in µs; faults, switches and I/O bytes as credited).
    #[arg(long, default_value = "samples", value_parser = weight_parser())]
    weight: Weight,
    /// With --format json: add every whole stack with its samples and counters, so
    /// scripts can rebuild flame graphs.
    #[arg(long)]
    stacks: bool,
    /// With a stack format: merge threads (and processes) instead of rooting each
    /// stack at its thread.
    #[arg(long)]
    no_threads: bool,
    /// With a stack format: frames are lines, `func (file:line)` with the line being executed
    /// (as py-spy's flame graphs), instead of functions. pprof always keeps lines.
    #[arg(long)]
    lines: bool,
    /// Write the report to FILE instead of standard output (opened before sampling; a
    /// symbolic link is refused; an existing file only with --force).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    recording: RecordArgs,
    /// Make the report from a recording instead of a live target.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pid", "command", "record"])]
    input: Option<PathBuf>,
    /// With --input: the window's start, as an offset from the recording's start (90s,
    /// 1m30s, 1h) or a clock time (RFC 3339, or HH:MM[:SS] local).
    #[arg(long, value_name = "T", requires = "input")]
    from: Option<String>,
    /// With --input: the window's end (as --from).
    #[arg(long, value_name = "T", requires = "input")]
    to: Option<String>,
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// Process id of the Python process to dump.
    #[arg(long, short = 'p', value_name = "PID")]
    pid: u32,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Same as --format json (py-spy's flag).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Pause the target while reading its stacks (exact, consistent stacks).
    #[arg(long)]
    blocking: bool,
}

#[derive(Debug, Args)]
struct PsArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Same as --format json (py-spy's flag).
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl Cli {
    /// Checks what clap cannot and converts into the mode to run.
    ///
    /// # Errors
    /// A usage error naming the bad value.
    pub fn into_mode(mut self) -> Result<Mode, HptopError> {
        // `--json`, as py-spy spells it, is `--format json`.
        match &mut self.command {
            Some(Command::Report(args)) if args.json => args.format = ReportFormatArg::Json,
            Some(Command::Dump(args)) if args.json => args.format = FormatArg::Json,
            Some(Command::Ps(args)) if args.json => args.format = FormatArg::Json,
            _ => {}
        }
        match self.command {
            None => Ok(Mode::Live {
                // No target: the picker lists the Python processes to choose from.
                target: if self.target.pid.is_none() && self.target.command.is_empty() {
                    Target::Pick
                } else {
                    target(self.target)?
                },
                sampling: SamplingOptions {
                    record: record_to(&self.recording)?,
                    ..sampling(&self.sampling)?
                },
            }),
            Some(Command::Report(args)) if args.input.is_some() => report_input(args),
            Some(Command::Record(args)) => record(args),
            Some(Command::Serve(args)) => serve(args),
            Some(Command::Diff(args)) => Ok(Mode::Diff(crate::modes::diff::DiffOptions {
                base: args.base,
                new: args.new,
                format: match args.format {
                    DiffFormatArg::Text => crate::modes::diff::DiffFormat::Text,
                    DiffFormatArg::Json => crate::modes::diff::DiffFormat::Json,
                    DiffFormatArg::Flamegraph => crate::modes::diff::DiffFormat::Flamegraph,
                },
                mode: share_mode(false, args.mode),
                weight: args.weight,
                output: args.output,
                force: args.force,
            })),
            Some(Command::Replay(args)) => Ok(Mode::Replay(ReplayOptions {
                path: args.file,
                mode: share_mode(false, args.mode),
            })),
            Some(Command::Report(args)) => {
                let every = args.every.as_deref().map(parse_period).transpose()?;
                let duration = args
                    .duration
                    .unwrap_or(if every.is_some() { 1e7 } else { 10.0 });
                if !(duration.is_finite() && duration > 0.0 && duration <= 1e7) {
                    return Err(HptopError::Usage(format!(
                        "--duration \"{duration}\" must be a positive number of seconds, at most 10000000 \
                         (about 115 days; for longer, `hptop record` without --duration)"
                    )));
                }
                let sampling = SamplingOptions {
                    record: record_to(&args.recording)?,
                    ..sampling(&args.sampling)?
                };
                // A rate needs two reads: fewer give no interval to measure anything over.
                let shortest = 2.0 / sampling.rate_hz;
                if duration < shortest {
                    return Err(HptopError::Usage(format!(
                        "--duration \"{duration}\" is shorter than two samples at {} Hz: give at least {shortest} seconds",
                        sampling.rate_hz
                    )));
                }
                let stacks = stack_output(&args);
                Ok(Mode::Report(ReportOptions {
                    target: target(args.target)?,
                    sampling,
                    duration: Duration::from_secs_f64(duration),
                    format: plain_format(args.format),
                    stacks,
                    json_stacks: args.stacks,
                    every,
                    output: args.output,
                    force: args.recording.force,
                    input: None,
                }))
            }
            Some(Command::Dump(args)) => Ok(Mode::Dump(DumpOptions {
                pid: args.pid,
                blocking: args.blocking,
                format: args.format.into(),
            })),
            Some(Command::Ps(args)) => Ok(Mode::Ps(PsOptions {
                format: args.format.into(),
            })),
        }
    }
}

fn target(args: TargetArgs) -> Result<Target, HptopError> {
    match (args.pid, args.command.is_empty()) {
        (Some(pid), true) => Ok(Target::Pid(pid)),
        (None, false) => Ok(Target::Launch(args.command)),
        _ => Err(HptopError::Usage(
            "name a target: --pid PID, or a command to launch after `--` (e.g. `-- python3 script.py`)".into(),
        )),
    }
}

fn sampling(args: &SamplingArgs) -> Result<SamplingOptions, HptopError> {
    if !(args.rate.is_finite() && (1.0..=1000.0).contains(&args.rate)) {
        return Err(HptopError::Usage(format!(
            "--rate \"{}\" must be between 1 and 1000 samples per second",
            args.rate
        )));
    }
    if args.native && !cfg!(feature = "unwind") {
        return Err(HptopError::Usage(
            "--native needs hptop built with native stack support: `cargo build --release --features unwind` \
             (needs libunwind-dev)"
                .into(),
        ));
    }
    Ok(SamplingOptions {
        rate_hz: args.rate,
        blocking: args.blocking,
        include_idle: args.idle || args.mode == ModeArg::Wall,
        mode: share_mode(args.idle, args.mode),
        native: args.native,
        async_stacks: args.async_stacks,
        subprocesses: args.subprocesses,
        log: args.log.clone(),
        record: None,
    })
}

fn serve(args: ServeArgs) -> Result<Mode, HptopError> {
    use crate::serve::{ServeOptions, Watch};
    let listen = args.listen.parse().map_err(|_| {
        HptopError::Usage(format!(
            "--listen \"{}\" is not an address and port: e.g. 127.0.0.1:9464 or 0.0.0.0:9464",
            args.listen
        ))
    })?;
    let watch = match args.pattern {
        Some(pattern) => Watch::Match(regex::Regex::new(&pattern).map_err(|e| {
            HptopError::Usage(format!(
                "--match \"{pattern}\" is not a regular expression: {e}"
            ))
        })?),
        None => Watch::Pids(args.pid),
    };
    if args.top_functions > 1000 {
        return Err(HptopError::Usage(format!(
            "--top-functions \"{}\" is too many series: at most 1000",
            args.top_functions
        )));
    }
    let sampling = sampling(&SamplingArgs {
        rate: args.rate,
        blocking: false,
        mode: ModeArg::Cpu,
        idle: false,
        native: false,
        async_stacks: args.async_stacks,
        subprocesses: args.subprocesses,
        log: None,
    })?;
    Ok(Mode::Serve(ServeOptions {
        watch,
        listen,
        sampling,
        top_functions: args.top_functions,
    }))
}

fn share_mode(idle: bool, mode: ModeArg) -> ShareMode {
    match (idle, mode) {
        (true, _) | (_, ModeArg::Wall) => ShareMode::Wall,
        (false, ModeArg::Cpu) => ShareMode::Cpu,
        (false, ModeArg::Samples) => ShareMode::Samples,
        (false, ModeArg::Gil) => ShareMode::Gil,
    }
}

fn record_to(args: &RecordArgs) -> Result<Option<RecordTo>, HptopError> {
    let max_size = args.max_size.as_deref().map(parse_size).transpose()?;
    match (&args.record, max_size) {
        (Some(path), max_size) => Ok(Some(RecordTo {
            path: path.clone(),
            max_size,
            force: args.force,
        })),
        (None, Some(_)) => Err(HptopError::Usage(
            "--max-size applies to a recording: add --record FILE".into(),
        )),
        (None, None) => Ok(None),
    }
}

/// `hptop record`.
fn record(args: RecordCmdArgs) -> Result<Mode, HptopError> {
    let duration = match args.duration {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 && d <= 1e9 => Some(Duration::from_secs_f64(d)),
        Some(d) => {
            return Err(HptopError::Usage(format!(
                "--duration \"{d}\" must be a positive number of seconds"
            )))
        }
    };
    let max_size = args.max_size.as_deref().map(parse_size).transpose()?;
    let sampling = SamplingOptions {
        record: Some(RecordTo {
            path: args.output,
            max_size,
            force: args.force,
        }),
        ..sampling(&args.sampling)?
    };
    Ok(Mode::Record(RecordOptions {
        target: target(args.target)?,
        sampling,
        duration,
    }))
}

/// Text or JSON (the stack outputs use `stack_output`).
fn plain_format(f: ReportFormatArg) -> Format {
    match f {
        ReportFormatArg::Json => Format::Json,
        _ => Format::Text,
    }
}

/// The stack output the report asks for, if any.
fn stack_output(args: &ReportArgs) -> Option<StackOutput> {
    let format = match args.format {
        ReportFormatArg::Collapsed => StackFormat::Collapsed,
        ReportFormatArg::Flamegraph => StackFormat::Flamegraph,
        ReportFormatArg::Speedscope => StackFormat::Speedscope,
        ReportFormatArg::Pprof => StackFormat::Pprof,
        ReportFormatArg::Text | ReportFormatArg::Json => return None,
    };
    Some(StackOutput {
        format,
        weight: args.weight,
        by_thread: !args.no_threads,
        lines: args.lines,
    })
}

/// `--weight`'s parser: the names of [`Weight::all`] (samples, then the model's counters).
fn weight_parser() -> impl clap::builder::TypedValueParser<Value = Weight> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Weight::all().map(Weight::name))
        .map(|name: String| Weight::named(&name).unwrap_or_default())
}

/// `--every`: a period of at least a second, in the forms `--from` takes as an offset.
fn parse_period(text: &str) -> Result<Duration, HptopError> {
    match TimeSpec::parse(text) {
        Ok(TimeSpec::Offset(d)) if d >= Duration::from_secs(1) => Ok(d),
        _ => Err(HptopError::Usage(format!(
            "--every \"{text}\" is not a period of at least a second: give e.g. 90s, 10m or 1h"
        ))),
    }
}

/// `hptop report --input FILE`.
fn report_input(args: ReportArgs) -> Result<Mode, HptopError> {
    let parse = |t: &Option<String>| t.as_deref().map(TimeSpec::parse).transpose();
    let sampling = sampling(&args.sampling)?;
    let stacks = stack_output(&args);
    Ok(Mode::Report(ReportOptions {
        target: Target::Pick,
        sampling,
        duration: Duration::ZERO,
        format: plain_format(args.format),
        stacks,
        json_stacks: args.stacks,
        every: None,
        output: args.output,
        force: args.recording.force,
        input: Some(InputWindow {
            path: args.input.unwrap_or_default(),
            from: parse(&args.from)?,
            to: parse(&args.to)?,
        }),
    }))
}

/// A size: bytes, or with a K, M, G or T suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, HptopError> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (digits, unit) = (&t[..split], t[split..].to_ascii_uppercase());
    let power = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => Some(0),
        "K" => Some(1),
        "M" => Some(2),
        "G" => Some(3),
        "T" => Some(4),
        _ => None,
    };
    match (digits.trim().parse::<f64>(), power) {
        (Ok(n), Some(power)) if n.is_finite() && n > 0.0 && n < 1e15 => {
            Ok((n * 1024f64.powi(power)) as u64)
        }
        _ => Err(HptopError::Usage(format!(
            "size \"{text}\" is not understood: give bytes or a number with K, M, G or T (e.g. 200M)"
        ))),
    }
}
