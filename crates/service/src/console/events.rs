//! The live push: `/events`, server-sent events from the hub, filtered per principal, with
//! `hello`, `tick` and `resync` so pages can tell live from stale.

use super::*;

pub(super) fn hub_event_name(kind: &HubEventKind) -> &'static str {
    match kind {
        HubEventKind::CallStarted => "call_started",
        HubEventKind::Snapshot(_) => "snapshot",
        HubEventKind::Emotion(_) => "emotion",
        HubEventKind::Cue(_) => "cue",
        HubEventKind::CallEnded(_) => "call_ended",
    }
}

pub(super) fn sse_json(name: &'static str, value: &impl Serialize) -> Event {
    match serde_json::to_string(value) {
        Ok(data) => Event::default().event(name).data(data),
        Err(e) => Event::default().event("error").data(e.to_string()),
    }
}

#[derive(Serialize)]
pub(super) struct Hello {
    boot_id: u64,
    server_time_unix_ms: u64,
}

#[derive(Serialize)]
pub(super) struct Resync {
    missed_events: u64,
}

pub(super) struct EventStream {
    hub: Arc<Hub>,
    who: Principal,
    filter: CallFilter,
    events: broadcast::Receiver<Arc<HubEvent>>,
    acks: Option<broadcast::Receiver<AlertAck>>,
    hello: Option<Event>,
    tick: tokio::time::Interval,
    stop: StopSignal,
}

impl EventStream {
    async fn next_event(&mut self) -> Option<Event> {
        if let Some(hello) = self.hello.take() {
            return Some(hello);
        }
        loop {
            tokio::select! {
                biased;
                () = self.stop.fired() => return None,
                received = self.events.recv() => match received {
                    Ok(event) => {
                        if self.filter.matches(&event.call) && may_view(&self.who, &event.call) {
                            return Some(sse_json(hub_event_name(&event.kind), &*event));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        self.hub.count_dropped(missed);
                        return Some(sse_json("resync", &Resync { missed_events: missed }));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                received = recv_ack(&mut self.acks) => match received {
                    Ok(ack) => {
                        if self.filter.matches(&ack.call) && may_view(&self.who, &ack.call) {
                            return Some(sse_json("ack", &ack));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some(sse_json("resync", &Resync { missed_events: missed }));
                    }
                    Err(broadcast::error::RecvError::Closed) => self.acks = None,
                },
                _ = self.tick.tick() => {
                    return Some(sse_json("tick", &Hello {
                        boot_id: 0,
                        server_time_unix_ms: now_unix_ms(),
                    }));
                }
            }
        }
    }
}

pub(super) async fn recv_ack(
    acks: &mut Option<broadcast::Receiver<AlertAck>>,
) -> Result<AlertAck, broadcast::error::RecvError> {
    match acks {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `/events?team=&agent_id=&call_id=`: `hello` first, then every matching hub event (named by
/// its type: `call_started`, `snapshot`, `emotion`, `cue`, `call_ended`), `ack` for
/// acknowledgements (not on agent streams), `resync` after falling behind, `tick` every
/// [`TICK_PERIOD`].
pub(super) async fn events(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<CallQuery>,
) -> Response {
    if !who.sees_live_calls() {
        return forbidden("this role does not see live calls");
    }
    let filter = scoped_filter(&who, &query);
    let (_, events) = state.hub.subscribe(&filter);
    let acks =
        (filter.agent_id.is_none() && who.role != Role::Agent).then(|| state.hub.subscribe_acks());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK_PERIOD, TICK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = EventStream {
        hub: state.hub.clone(),
        who,
        filter,
        events,
        acks,
        hello: Some(sse_json(
            "hello",
            &Hello {
                boot_id: state.boot_id,
                server_time_unix_ms: now_unix_ms(),
            },
        )),
        tick,
        stop: state.stop.clone(),
    };
    let stream = futures_util::stream::unfold(stream, |mut s| async move {
        let event = s.next_event().await?;
        Some((Ok::<_, std::convert::Infallible>(event), s))
    });
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}
