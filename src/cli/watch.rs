//! `attune watch`: follows live calls in the terminal through the Monitor stream.

use std::io::Write;

use anyhow::Context;
use clap::ValueEnum;

use attune_service::client::connect;
use attune_service::convert::event_json;
use attune_service::pb::{self, event::Kind, monitor_response};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    Text,
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The server's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    #[command(flatten)]
    client: super::accounts::ClientArgs,
    /// Only this team's calls.
    #[arg(long)]
    team: Option<String>,
    /// Only this agent's calls.
    #[arg(long)]
    agent_id: Option<String>,
    /// Only this call.
    #[arg(long)]
    call_id: Option<String>,
    #[arg(long, value_enum, default_value_t = WatchFormat::Text)]
    format: WatchFormat,
}

/// One event as a readable line.
pub fn event_text(e: &pb::Event) -> String {
    let call = e.call.as_ref().map_or("?", |c| c.call_id.as_str());
    match &e.kind {
        Some(Kind::CallStarted(_)) => {
            let (agent, team) = e
                .call
                .as_ref()
                .map_or(("", ""), |c| (c.agent_id.as_str(), c.team.as_str()));
            format!("{call}: started (agent {agent}, team {team})")
        }
        Some(Kind::Snapshot(s)) => {
            let emotion = s
                .caller_emotion
                .as_ref()
                .filter(|p| !p.emotion.is_empty())
                .map_or("listening".to_owned(), |p| {
                    format!("{} ({:.0}%)", p.emotion, p.confidence * 100.0)
                });
            let calmness = s
                .agent_calmness
                .map_or("-".to_owned(), |c| format!("{c:.0}"));
            let talking = |p: Option<&pb::PartyNow>| p.is_some_and(|p| p.talking);
            format!(
                "{call} {:>7.1}s  agent{} caller{}  caller: {emotion}  agent calmness: {calmness}  open cues: {}",
                s.t_s,
                if talking(s.agent.as_ref()) { "*" } else { " " },
                if talking(s.caller.as_ref()) { "*" } else { " " },
                s.open_cues.len()
            )
        }
        Some(Kind::Emotion(p)) => format!(
            "{call} {:>7.1}s  {} {} arousal {:.2} valence {:.2} calmness {:.0}",
            p.t_s,
            p.party,
            if p.emotion.is_empty() {
                "abstains"
            } else {
                &p.emotion
            },
            p.arousal,
            p.valence,
            p.calmness
        ),
        Some(Kind::Cue(c)) => {
            let values: Vec<String> = c
                .evidence
                .iter()
                .map(|v| format!("{}={:.2}", v.name, v.value))
                .collect();
            let guidance = if c.guidance.is_empty() {
                String::new()
            } else {
                format!("  → {}", c.guidance)
            };
            format!(
                "{call} {:>7.1}s  CUE {} {} [{} {}] {} ({}){guidance}",
                c.t_s,
                c.event,
                c.kind,
                c.party,
                c.severity,
                c.rule,
                values.join(", ")
            )
        }
        Some(Kind::CallEnded(s)) => format!(
            "{call}: ended ({}) after {:.1} s, {} chunks, {} cue events",
            s.reason,
            s.duration_s,
            s.chunks_received,
            s.cues.len()
        ),
        None => format!("{call}: (empty event)"),
    }
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = connect(&args.server, &args.client.options()?)
            .await
            .with_context(|| format!("cannot connect to {}", args.server))?;
        let request = pb::MonitorRequest {
            team: args.team.clone().unwrap_or_default(),
            agent_id: args.agent_id.clone().unwrap_or_default(),
            call_id: args.call_id.clone().unwrap_or_default(),
        };
        let mut stream = client.monitor(request).await?.into_inner();
        let stdout = std::io::stdout();
        while let Some(message) = stream.message().await? {
            let line = match (message.msg, args.format) {
                (Some(monitor_response::Msg::LiveCall(live)), format) => {
                    let call = live.call.clone();
                    let event = pb::Event {
                        call,
                        seq: 0,
                        published_at_unix_ms: 0,
                        kind: live.latest.map(Kind::Snapshot),
                    };
                    match format {
                        WatchFormat::Jsonl => {
                            let mut value = event_json(&event);
                            value["type"] = "live_call".into();
                            value.to_string()
                        }
                        WatchFormat::Text => format!("live: {}", event_text(&event)),
                    }
                }
                (Some(monitor_response::Msg::Event(event)), WatchFormat::Jsonl) => {
                    event_json(&event).to_string()
                }
                (Some(monitor_response::Msg::Event(event)), WatchFormat::Text) => {
                    event_text(&event)
                }
                (Some(monitor_response::Msg::MissedEvents(n)), WatchFormat::Jsonl) => {
                    serde_json::json!({"type": "missed_events", "count": n}).to_string()
                }
                (Some(monitor_response::Msg::MissedEvents(n)), WatchFormat::Text) => {
                    format!("(missed {n} events: reading too slowly)")
                }
                (None, _) => continue,
            };
            let line = terminal_safe(&line);
            let mut out = stdout.lock();
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                break;
            }
        }
        anyhow::Ok(())
    })
}

/// `line` with every control character (ESC sequences, carriage returns, bells: ids and names
/// come from clients) shown as a `\u{..}` escape instead of reaching the terminal.
pub fn terminal_safe(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut safe = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if c.is_control() {
            safe.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            safe.push(c);
        }
    }
    std::borrow::Cow::Owned(safe)
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_characters_from_clients_do_not_reach_the_terminal() {
        assert_eq!(terminal_safe("call-1: started"), "call-1: started");
        let hostile = "c\u{1b}[2J\u{1b}]0;owned\u{7}\rx";
        let shown = terminal_safe(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(shown, "c\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{d}x");
    }
}
