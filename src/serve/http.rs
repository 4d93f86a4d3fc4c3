//! The HTTP side of `hptop serve` (hyper on tokio): `/metrics`, `/debug/pprof/profile`,
//! `/report`. Bounded against slow and hostile clients: a cap on connections, a deadline for
//! request headers and for each connection, small header buffers, GET only.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::metrics;
use super::Fleet;
use crate::error::HptopError;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// A client must send its request headers within this time (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest window a profile or report may ask for.
pub const MAX_WINDOW_S: u64 = 600;
/// Read buffer of a connection: the request line and headers must fit (a larger header is
/// refused with 431).
const MAX_HEADER_BYTES: usize = 16 * 1024;

type Body = Full<Bytes>;

/// Serves until `interrupted` is set.
///
/// # Errors
/// Accepting failed for good.
pub async fn serve(
    listener: tokio::net::TcpListener,
    fleet: Arc<Fleet>,
    interrupted: Arc<AtomicBool>,
    rate_hz: f64,
) -> Result<(), HptopError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p,
            () = wait_for(&interrupted) => return Ok(()),
        };
        let Ok(permit) = permit else { return Ok(()) };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = wait_for(&interrupted) => return Ok(()),
        };
        // Out of file descriptors and the like: wait, then go on.
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let fleet = Arc::clone(&fleet);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fleet = Arc::clone(&fleet);
                async move { Ok::<_, Infallible>(route(req, &fleet, rate_hz).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            // No connection lives longer than the longest window plus a margin.
            let limit = Duration::from_secs(MAX_WINDOW_S + 60);
            let _ = tokio::time::timeout(limit, connection).await;
            drop(permit);
        });
    }
}

async fn wait_for(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    reply(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// A query parameter's value.
fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `seconds` and `pid` of a window request, checked.
fn window_params(query: &str, default_s: u64) -> Result<(Duration, Option<u32>), String> {
    let seconds = match param(query, "seconds") {
        None => default_s,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|&n| (1..=MAX_WINDOW_S).contains(&n))
            .ok_or_else(|| format!("seconds must be a whole number from 1 to {MAX_WINDOW_S}"))?,
    };
    let pid = param(query, "pid")
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| "pid must be a process id".to_owned())
        })
        .transpose()?;
    Ok((Duration::from_secs(seconds), pid))
}

async fn route(req: Request<Incoming>, fleet: &Fleet, rate_hz: f64) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    match req.uri().path() {
        "/metrics" => {
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let openmetrics = metrics::wants_openmetrics(accept);
            let body = metrics::exposition(&fleet.scrape(), openmetrics);
            let kind = if openmetrics {
                metrics::OPENMETRICS_TEXT
            } else {
                metrics::PROMETHEUS_TEXT
            };
            reply(StatusCode::OK, kind, body)
        }
        "/debug/pprof/profile" => match window(fleet, &query, 30).await {
            Ok((snapshot, started)) => match pprof(&snapshot, started, rate_hz) {
                Ok(bytes) => {
                    let mut r = reply(StatusCode::OK, "application/octet-stream", bytes);
                    if let Ok(v) = "attachment; filename=\"profile.pb.gz\"".parse() {
                        r.headers_mut().insert(hyper::header::CONTENT_DISPOSITION, v);
                    }
                    r
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e),
            },
            Err((status, e)) => text(status, &e),
        },
        "/report" => match window(fleet, &query, 10).await {
            Ok((snapshot, started)) => {
                let header = crate::report::ReportHeader {
                    started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    rate_hz,
                    stacks: param(&query, "stacks").is_some(),
                    ..crate::report::ReportHeader::default()
                };
                match crate::report::json::Report::new(&snapshot, &header).to_json() {
                    Ok(json) => reply(StatusCode::OK, "application/json", json),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                }
            }
            Err((status, e)) => text(status, &e),
        },
        "/" => text(
            StatusCode::OK,
            "hptop serve: /metrics (Prometheus), /debug/pprof/profile?seconds=N[&pid=P] (pprof), /report?seconds=N[&pid=P][&stacks] (JSON)",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics"),
    }
}

/// The snapshot of a window of the next `seconds` on the targets asked for, merged.
async fn window(
    fleet: &Fleet,
    query: &str,
    default_s: u64,
) -> Result<
    (
        crate::model::snapshot::Snapshot,
        chrono::DateTime<chrono::Utc>,
    ),
    (StatusCode, String),
> {
    let (duration, pid) =
        window_params(query, default_s).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let started = chrono::Utc::now();
    let receivers = fleet.windows(duration, pid).map_err(|(status, e)| {
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            e,
        )
    })?;
    let opened = std::time::Instant::now();
    let mut snapshot = crate::model::snapshot::Snapshot::default();
    for r in receivers {
        // A target that exits answers early; one whose worker is gone answers nothing.
        if let Ok(Ok(s)) = tokio::time::timeout(duration + Duration::from_secs(10), r).await {
            snapshot.processes.extend(s.processes);
        }
    }
    if let Some(pid) = pid {
        snapshot.processes.retain(|p| p.pid == pid);
    }
    // Every target exited before the window's end: the answer says so, not a short 200.
    let lasted = opened.elapsed();
    if lasted + Duration::from_millis(500) < duration && snapshot.processes.iter().all(|p| p.exited)
    {
        let pids: Vec<String> = snapshot
            .processes
            .iter()
            .map(|p| p.pid.to_string())
            .collect();
        return Err((
            StatusCode::NOT_FOUND,
            format!(
                "the window was cut short after {:.1} s of the {} s asked: PID {} exited at {}",
                lasted.as_secs_f64(),
                duration.as_secs(),
                if pids.is_empty() {
                    pid.map_or_else(|| "?".into(), |p| p.to_string())
                } else {
                    pids.join(", ")
                },
                chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            ),
        ));
    }
    Ok((snapshot, started))
}

fn pprof(
    snapshot: &crate::model::snapshot::Snapshot,
    started: chrono::DateTime<chrono::Utc>,
    rate_hz: f64,
) -> Result<Vec<u8>, String> {
    use crate::report::{pprof, StackFormat, StackOutput, Weight};
    let output = StackOutput {
        format: StackFormat::Pprof,
        weight: Weight::Counter(crate::model::functions::Counter::Cpu),
        by_thread: true,
        lines: true,
    };
    let window = pprof::Window {
        start_unix_nanos: started.timestamp_nanos_opt().unwrap_or(0),
        rate_hz,
    };
    pprof::encode(&pprof::profile(snapshot, &output, window, "hptop serve"))
        .map_err(|e| format!("cannot compress the profile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_parameters_are_checked() {
        assert_eq!(window_params("", 30), Ok((Duration::from_secs(30), None)));
        assert_eq!(
            window_params("seconds=5&pid=42", 30),
            Ok((Duration::from_secs(5), Some(42)))
        );
        assert!(window_params("seconds=0", 30).is_err());
        assert!(window_params("seconds=601", 30).is_err());
        assert!(window_params("seconds=x", 30).is_err());
        assert!(window_params("pid=-1", 30).is_err());
    }
}
