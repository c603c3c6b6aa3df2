//! `attune calls`: stored calls by agent, team, date, score and what happened, and per-agent
//! trends (`attune calls --trend`), from the store `attune analyze` fills.

use std::io::Write;

use clap::ValueEnum;

use attune_qa::store::{CallQuery, Store, TrendPeriod};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CallsFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Period {
    Day,
    /// ISO 8601 week, Monday to Sunday (`2026-W49`).
    Week,
    Month,
}

#[derive(Debug, clap::Args)]
pub struct CallsArgs {
    /// The database (SQLite file, or postgres://... with the `postgres` feature).
    #[arg(long, default_value = "attune.db")]
    db: String,
    #[arg(long)]
    agent: Option<String>,
    #[arg(long)]
    team: Option<String>,
    /// Calls on or after this date (YYYY-MM-DD) or time (RFC 3339, UTC).
    #[arg(long, value_parser = attune_qa::store::parse_date)]
    from: Option<String>,
    /// Calls on or before this date (YYYY-MM-DD), or before this time.
    #[arg(long, value_parser = attune_qa::store::parse_date)]
    to: Option<String>,
    /// Lowest QA score, percent.
    #[arg(long)]
    min_score: Option<f64>,
    /// Highest QA score, percent.
    #[arg(long)]
    max_score: Option<f64>,
    /// Only calls whose caller ended upset (last judgements average P(angry) >= 0.5).
    #[arg(long)]
    caller_ended_upset: bool,
    /// Only calls where the agent interrupted more than N times.
    #[arg(long, value_name = "N")]
    agent_interruptions_over: Option<i64>,
    /// Per-agent trends (calls, mean and lowest score, automatic fails, upset endings, mean
    /// empathy scores per period: docs/empathy.md) instead of the calls.
    #[arg(long)]
    trend: bool,
    /// Period of --trend: day (`2026-12-03`), ISO week (`2026-W49`) or month (`2026-12`).
    #[arg(long, value_enum, default_value_t = Period::Day)]
    period: Period,
    /// Most calls listed (newest first).
    #[arg(long)]
    limit: Option<i64>,
    #[arg(long, value_enum, default_value_t = CallsFormat::Table)]
    format: CallsFormat,
    /// Seconds to wait for a locked database.
    #[arg(long, default_value_t = 5.0)]
    busy_timeout_s: f64,
}

pub fn run(args: &CallsArgs) -> anyhow::Result<()> {
    if let (Some(lo), Some(hi)) = (args.min_score, args.max_score)
        && lo > hi
    {
        anyhow::bail!("--min-score {lo} is above --max-score {hi}");
    }
    if !args.db.contains("://") && !std::path::Path::new(&args.db).exists() {
        anyhow::bail!(
            "no database at {}: score calls first (`attune analyze ... --out DIR` stores them in DIR/attune.db) or pass --db",
            args.db
        );
    }
    let timeout = std::time::Duration::from_secs_f64(args.busy_timeout_s.clamp(0.0, 3600.0));
    let mut store = Store::open_with_timeout(&args.db, timeout)?;
    let query = CallQuery {
        agent: args.agent.clone(),
        team: args.team.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        min_score_pct: args.min_score,
        max_score_pct: args.max_score,
        caller_ended_upset: args.caller_ended_upset,
        agent_interruptions_over: args.agent_interruptions_over,
        limit: args.limit,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let num = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    if args.trend {
        let period = match args.period {
            Period::Day => TrendPeriod::Day,
            Period::Week => TrendPeriod::Week,
            Period::Month => TrendPeriod::Month,
        };
        let rows = store.agent_trends(&query, period)?;
        let empathy = attune_qa::trend::agent_empathy_trends(&mut store, &query, period)?;
        let empathy_of = |r: &attune_qa::store::TrendRow| {
            empathy
                .iter()
                .find(|e| e.agent == r.agent && e.period == r.period)
        };
        match args.format {
            CallsFormat::Json => {
                #[derive(serde::Serialize)]
                struct Row<'a> {
                    #[serde(flatten)]
                    trend: &'a attune_qa::store::TrendRow,
                    empathy: Option<&'a attune_qa::trend::EmpathyTrendRow>,
                }
                let joined: Vec<Row> = rows
                    .iter()
                    .map(|r| Row {
                        trend: r,
                        empathy: empathy_of(r),
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &joined)?;
                writeln!(out)?;
            }
            CallsFormat::Table => {
                writeln!(
                    out,
                    "{:<20} {:<10} {:>5} {:>10} {:>9} {:>10} {:>6} {:>11} {:>9} {:>9} {:>9} {:>14}",
                    "agent",
                    "period",
                    "calls",
                    "mean score",
                    "min score",
                    "auto-fails",
                    "upset",
                    "interrupts",
                    "listening",
                    "attuned",
                    "de-escal",
                    "upset-interr."
                )?;
                for r in &rows {
                    let e = empathy_of(r);
                    writeln!(
                        out,
                        "{:<20} {:<10} {:>5} {:>10} {:>9} {:>10} {:>6} {:>11.1} {:>9} {:>9} {:>9} {:>14}",
                        r.agent,
                        r.period,
                        r.calls,
                        num(r.mean_score_pct),
                        num(r.min_score_pct),
                        r.auto_fails,
                        r.callers_ended_upset,
                        r.mean_agent_interruptions,
                        num(e.and_then(|e| e.mean_active_listening)),
                        num(e.and_then(|e| e.mean_attunement)),
                        num(e.and_then(|e| e.mean_de_escalation)),
                        e.map_or(0, |e| e.interruptions_while_upset)
                    )?;
                }
            }
        }
    } else {
        let rows = store.calls(&query)?;
        match args.format {
            CallsFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
            }
            CallsFormat::Table => {
                writeln!(
                    out,
                    "{:<24} {:<16} {:<12} {:<12} {:>8} {:>8} {:>10} {:>6} {:<}",
                    "call at",
                    "agent",
                    "team",
                    "caller end",
                    "duration",
                    "score",
                    "interrupts",
                    "cues",
                    "recording"
                )?;
                for r in &rows {
                    writeln!(
                        out,
                        "{:<24} {:<16} {:<12} {:<12} {:>8} {:>8} {:>10} {:>6} {}",
                        r.call_at,
                        r.agent.as_deref().unwrap_or("-"),
                        r.team.as_deref().unwrap_or("-"),
                        format!(
                            "{}{}",
                            r.caller_end_emotion.as_deref().unwrap_or("-"),
                            if r.caller_ended_upset { " (upset)" } else { "" }
                        ),
                        format!("{:.0}s", r.duration_s),
                        format!("{}{}", num(r.score_pct), if r.auto_fail { "!" } else { "" }),
                        r.agent_interruptions,
                        r.cue_count,
                        r.recording.as_deref().unwrap_or(&r.call_id)
                    )?;
                }
                writeln!(out, "{} calls", rows.len())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
