/* snakedeck dashboard: the live feed, in the browser.
 *
 * One dash-extensions WebSocket (id "ws") follows the current page's feed. Messages are parsed
 * and buffered here (one listener call per message, see FeedSocket below), and flushed to the
 * page at most every FLUSH_MS: job rows are patched in the AG Grid directly, the run summary
 * goes to one dcc.Store (a server callback patches what changed), job summaries go to the
 * timeline at most every TIMELINE_MS (re-sent until acknowledged, see timelineAck), and the
 * event stream is rendered here. A burst of thousands of events therefore costs a handful of server
 * callbacks, not thousands.
 *
 * When the socket closes, it reconnects by itself with back-off, asking for the events after
 * the last seq it saw (after_seq), so nothing is missed and nothing is shown twice.
 */
(function () {
  "use strict";
  var FLUSH_MS = 400;
  var GRID_REFRESH_MS = 2000;
  var TIMELINE_MS = 2000;
  var MAX_EVENTS = 300;
  var MAX_LOG_CHARS = 400000;  // the run log tail kept in the page (the start is dropped)
  var LOG_STREAM = "snakemake";
  var HIDDEN = { display: "none" };
  var SHOWN = {};

  function newTimeline() {
    // pending: jobid -> {job, mark}; mark is the seq of the first send that carried this
    // version of the job (0: not sent yet). Acknowledged entries are dropped.
    return { pending: {}, seq: 0, running: 0, lastSent: 0 };
  }

  /* The run log as the page shows it: ``end`` is the byte offset just after the text held,
   * ``asked`` the offset a catch-up was last asked from (one at a time). */
  function newLog(start) {
    return { text: "", end: 0, asked: null, askedAt: 0, n: 0, dropped: false, start: start };
  }

  function newBuffer() {
    return { events: [], runs: {}, jobs: {}, logs: [], count: 0 };
  }

  var S = (window.snakedeck = window.snakedeck || {
    feed: null,
    token: null,
    lastSeq: 0,
    attempts: 0,
    buf: newBuffer(),
    timer: null,
    reconnectTimer: null,
    events: [],
    lastGridRefresh: 0,
    tl: newTimeline(),
    log: newLog(null),
    messages: 0,
    flushes: 0,
  });

  function exists(id) {
    return !!document.getElementById(id);
  }

  /* ``store``: a dcc.Store has no DOM node, so it cannot be checked for; callers only name
   * stores of the page the feed belongs to. */
  function setProps(id, props, store) {
    if ((store || exists(id)) && window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(id, props);
    }
  }

  function feedUrl(feed, token, attempt) {
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    var params = ["batch=1"];  // events in batches: a page that falls behind catches up
    if (feed.kind === "run") params.push("after_seq=" + S.lastSeq);
    if (token) params.push("token=" + encodeURIComponent(token));
    if (attempt) params.push("r=" + attempt);
    return proto + window.location.host + feed.path + (params.length ? "?" + params.join("&") : "");
  }

  function eventLine(e) {
    var d = e.data || {};
    var t = (e.ts || "").slice(11, 19);
    var what = e.msg || "";
    if (!what) {
      if (e.type === "run_state") what = d.state || "";
      else if (e.type === "job_info") what = (d.rule_name || "") + (d.wildcards ? " " + JSON.stringify(d.wildcards) : "");
      else if (e.type === "progress") what = (d.done || 0) + " of " + (d.total || 0) + " steps done";
    }
    var job = d.jobid !== undefined ? d.jobid : d.job_id;
    var jobText = job !== undefined && job !== null ? " [job " + job + "]" : "";
    return "#" + e.seq + "  " + t + "  " + e.type + jobText + "  " + String(what).split("\n")[0].slice(0, 300);
  }

  function renderEvents() {
    if (!exists("events-log")) return;
    var rows = S.events.slice(-MAX_EVENTS).reverse().map(function (e) {
      var level = e.level === "error" || e.level === "critical" || e.type === "job_error" ? "error" : e.level;
      return {
        namespace: "dash_html_components",
        type: "Div",
        props: { children: eventLine(e), className: "sd-event sd-event-" + (level || "info") },
      };
    });
    setProps("events-log", { children: rows });
  }

  var encoder = window.TextEncoder ? new TextEncoder() : null;
  var decoder = window.TextDecoder ? new TextDecoder() : null;

  /* The part of ``chunk`` after byte offset ``end`` (chunks are cut at whole characters). */
  function textAfter(chunk, end) {
    if (end <= chunk.offset) return chunk.text || "";
    if (!encoder || !decoder) return "";
    return decoder.decode(encoder.encode(chunk.text || "").slice(end - chunk.offset));
  }

  function renderLog() {
    var el = document.getElementById("run-log");
    if (!el) return;
    var stuck = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    var lead = S.log.dropped ? "… (earlier lines are not shown here)\n" : "";
    setProps("run-log", { children: lead + S.log.text });
    if (stuck) {
      setTimeout(function () {
        var box = document.getElementById("run-log");
        if (box) box.scrollTop = box.scrollHeight;
      }, 0);
    }
  }

  /* Ask the server for the stored log from where the page stands (a gap, or the end). */
  function askLog() {
    var log = S.log;
    if (!S.feed || S.feed.kind !== "run") return;
    if (log.asked === log.end && Date.now() - log.askedAt < 3000) return;  // one in flight
    log.asked = log.end;
    log.askedAt = Date.now();
    log.n += 1;
    setProps("run-log-want", { data: { offset: log.end, n: log.n } }, true);
  }

  /* Append chunks in offset order; one beyond the end means text was missed: ask for it. */
  function appendLog(chunks, fill) {
    var log = S.log;
    var changed = false;
    var gap = false;
    chunks.sort(function (a, b) { return a.offset - b.offset; });
    for (var i = 0; i < chunks.length; i++) {
      var c = chunks[i];
      if (c.next_offset <= log.end) continue;
      if (c.offset > log.end) {
        if (!fill) { gap = true; break; }
        log.dropped = log.dropped || log.end > 0 || c.offset > 0;  // the start is not kept
      }
      log.text += textAfter(c, log.end);
      log.end = c.next_offset;
      changed = true;
    }
    if (log.text.length > MAX_LOG_CHARS) {
      var cut = log.text.indexOf("\n", log.text.length - MAX_LOG_CHARS);
      log.text = log.text.slice(cut === -1 ? log.text.length - MAX_LOG_CHARS : cut + 1);
      log.dropped = true;
    }
    if (changed) renderLog();
    if (gap) askLog();
  }

  function valueOf(x) {
    return x === undefined ? null : x;
  }

  function gridApi() {
    try {
      return window.dash_ag_grid && window.dash_ag_grid.getApi("jobs-grid");
    } catch (err) {
      return null;
    }
  }

  function patchGrid(jobs, force) {
    var api = gridApi();
    if (!api) return;
    var missing = false;
    var ids = Object.keys(jobs);
    for (var i = 0; i < ids.length; i++) {
      var node = api.getRowNode(ids[i]);
      if (node && node.data) {
        node.setData(Object.assign({}, node.data, jobs[ids[i]]));
      } else {
        missing = true;
      }
    }
    var now = Date.now();
    if ((missing || force) && now - S.lastGridRefresh > (force ? 0 : GRID_REFRESH_MS)) {
      S.lastGridRefresh = now;
      api.refreshInfiniteCache();
    } else if (missing) {
      schedule(GRID_REFRESH_MS);  // come back for the rows not yet in the grid
      S.gridStale = true;
    }
  }

  function isTerminal(state) {
    return !!(S.feed && S.feed.terminal && S.feed.terminal.indexOf(state) !== -1);
  }

  /* Job summaries to the timeline: everything not yet acknowledged, at most every TIMELINE_MS
   * (at once when the run ends); while bars are running, a tick now and then lets them grow. */
  function sendTimeline(terminal) {
    var tl = S.tl;
    var ids = Object.keys(tl.pending);
    var now = Date.now();
    var due = terminal || now - tl.lastSent >= TIMELINE_MS;
    if (!ids.length && !tl.running) return;
    if (!due) {
      schedule(TIMELINE_MS - (now - tl.lastSent));
      return;
    }
    tl.seq += 1;
    tl.lastSent = now;
    var jobs = ids.map(function (id) {
      var entry = tl.pending[id];
      if (!entry.mark) entry.mark = tl.seq;
      return entry.job;
    });
    setProps("timeline-feed", { data: { seq: tl.seq, jobs: jobs } }, true);
  }

  function flush() {
    S.timer = null;
    S.flushes += 1;
    var b = S.buf;
    S.buf = newBuffer();
    var feed = S.feed;
    if (!feed) return;
    var runs = Object.keys(b.runs).map(function (k) { return b.runs[k]; });
    if (feed.kind === "runs") {
      if (runs.length) setProps("runs-live", { data: { at: Date.now(), runs: runs } }, true);
      return;
    }
    var terminal = false;
    var mine = b.runs[feed.run_id];
    if (mine) {
      terminal = isTerminal(mine.state);
      setProps("run-live", { data: mine }, true);
    }
    var jobsChanged = Object.keys(b.jobs).length > 0;
    if (jobsChanged || S.gridStale || terminal) {
      S.gridStale = false;
      patchGrid(b.jobs, terminal);
    }
    if (b.logs.length) appendLog(b.logs, false);
    if (terminal) {
      askLog();  // the last lines may have been stored after the last chunk pushed
      setTimeout(function () { S.log.asked = null; askLog(); }, 3000);
    }
    if (b.events.length) {
      Array.prototype.push.apply(S.events, b.events);
      if (S.events.length > 2 * MAX_EVENTS) S.events = S.events.slice(-MAX_EVENTS);
      renderEvents();
    }
    sendTimeline(terminal);
  }

  function schedule(delay) {
    if (S.timer === null) S.timer = setTimeout(flush, delay || FLUSH_MS);
  }

  function handle(m) {
    var data = m.data || {};
    if (m.type === "events") {
      if (Array.isArray(m.data)) m.data.forEach(function (e) { handle({ type: "event", data: e }); });
    } else if (m.type === "event") {
      if (typeof data.seq === "number") {
        if (data.seq <= S.lastSeq && S.feed && S.feed.kind === "run") return;
        if (data.seq > S.lastSeq) S.lastSeq = data.seq;
      }
      if (S.feed && S.feed.kind === "run") S.buf.events.push(data);
    } else if (m.type === "run") {
      S.buf.runs[data.run_id] = data;
    } else if (m.type === "log") {
      if (S.feed && S.feed.kind === "run" && data.run_id === S.feed.run_id && data.stream === LOG_STREAM) {
        S.buf.logs.push(data);
      }
    } else if (m.type === "job") {
      if (S.feed && S.feed.kind === "run") {
        S.buf.jobs[String(data.jobid)] = data;
        S.tl.pending[String(data.jobid)] = { job: data, mark: 0 };
      }
    }
  }

  function onRaw(data, socket) {
    if (socket !== S.socket) return;  // a socket of a page we already left
    S.messages += 1;
    if (typeof data !== "string") return;
    if (S.debug) S.debug.push(data.slice(0, 400));
    try {
      handle(JSON.parse(data));
    } catch (err) {
      return;  // a malformed message is dropped; a reconnect catches up from after_seq
    }
    schedule();
  }

  /* The dash-extensions WebSocket hands each message to Dash as a prop change, and a burst of
   * prop changes coalesces into one callback: most messages of a burst would never be seen.
   * So the component keeps owning the connection (URL, state, close), and every message of the
   * feed sockets it opens is also delivered here, one by one, through a listener. */
  if (!window.WebSocket.__snakedeck) {
    var NativeWebSocket = window.WebSocket;
    var FeedSocket = function (url, protocols) {
      var socket = protocols === undefined ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
      if (String(url).indexOf("/ws/runs") !== -1) {
        S.socket = socket;
        socket.addEventListener("message", function (ev) { onRaw(ev.data, socket); });
      }
      return socket;
    };
    FeedSocket.prototype = NativeWebSocket.prototype;
    FeedSocket.CONNECTING = 0;
    FeedSocket.OPEN = 1;
    FeedSocket.CLOSING = 2;
    FeedSocket.CLOSED = 3;
    FeedSocket.__snakedeck = true;
    window.WebSocket = FeedSocket;
  }

  /* [text, color, style, tooltip] of the connection badge. ``ready`` is the socket's
   * readyState, or null when the page follows no feed: then the badge hides (there is nothing
   * live to be connected to), unless the server wants a token this browser does not have. */
  function badgeFor(ready, tokenRequired) {
    var tokenMissing = tokenRequired && !S.token;
    if (tokenMissing) {
      return ["needs token", "red", SHOWN, "This server requires an API token: click Token to add yours."];
    }
    if (ready === null) return ["", "gray", HIDDEN, ""];
    if (ready === 1) return ["live", "teal", SHOWN, "This page updates live from the server."];
    if (ready === 0) return ["connecting", "blue", SHOWN, "Connecting to the live feed…"];
    return ["reconnecting", "orange", SHOWN, "The live feed was interrupted: reconnecting; nothing is missed."];
  }

  function showBadge(ready, tokenRequired) {
    var badge = badgeFor(ready, tokenRequired);
    setProps("conn-badge", { children: badge[0], color: badge[1], style: badge[2] });
    setProps("conn-tip", { label: badge[3] });
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.snakedeck = {
    /* feed-path store → the WebSocket URL (a new page, or a new token). */
    feed: function (feed, token, tokenRequired) {
      if (S.reconnectTimer) clearTimeout(S.reconnectTimer);
      S.reconnectTimer = null;
      var samePage = feed && S.feed && feed.path === S.feed.path;
      S.feed = feed || null;
      S.token = token || null;
      S.attempts = 0;
      S.buf = newBuffer();
      if (!samePage) S.tl = newTimeline();
      if (!feed || (tokenRequired && !S.token)) {
        // No feed on this page, or the server wants a token we do not have: connecting would
        // only fail (and litter the console); the badge says why instead, or hides.
        S.feed = null;
        setTimeout(function () { showBadge(null, tokenRequired); }, 0);
        return "";
      }
      if (feed.kind === "run" && !samePage) {
        S.lastSeq = feed.after_seq || 0;
        S.events = feed.events || [];
        setTimeout(renderEvents, 0);
        var start = feed.log || { offset: 0, next_offset: 0, text: "" };
        S.log = newLog(start);
        S.log.text = start.text || "";
        S.log.end = start.next_offset || 0;
        S.log.dropped = (start.offset || 0) > 0;
        setTimeout(function () {
          renderLog();
          var box = document.getElementById("run-log");
          if (box) box.scrollTop = box.scrollHeight;
        }, 0);
      }
      return feedUrl(feed, S.token, feed.nonce || 0);
    },

    onState: function (state, tokenRequired) {
      var ready = state ? state.readyState : 3;
      if (ready === 3 && S.feed) {
        // Closed: come back by ourselves, asking only for what we missed.
        S.attempts += 1;
        var delay = Math.min(500 * Math.pow(2, S.attempts - 1), 15000);
        if (S.reconnectTimer) clearTimeout(S.reconnectTimer);
        S.reconnectTimer = setTimeout(function () {
          S.reconnectTimer = null;
          if (S.feed) setProps("ws", { url: feedUrl(S.feed, S.token, S.attempts) });
        }, delay);
      } else if (ready === 1) {
        S.attempts = 0;
      }
      return badgeFor(S.feed ? ready : null, tokenRequired);
    },

    /* The run's state and attempt from a live summary, moved only when one of them changes:
     * the callbacks keyed on it (estimate ticker, attempts, CPU and memory) then cost no
     * round trip per feed message (pages/run/live.py ``phase``). */
    phase: function (summary, before) {
      if (!summary) return window.dash_clientside.no_update;
      var next = { state: valueOf(summary.state), attempt: valueOf(summary.attempt) };
      if (before && before.state === next.state && before.attempt === next.attempt) {
        return window.dash_clientside.no_update;
      }
      return next;
    },

    /* What the Results tab re-reads on (state, jobs done, attempt: pages/run/results.py
     * ``_key``), moved only while it is open: a closed tab costs the feed nothing. */
    resultsKey: function (summary, tab, before) {
      if (!summary || tab !== "results") return window.dash_clientside.no_update;
      var next = [valueOf(summary.state), valueOf((summary.progress || {}).done),
                  valueOf(summary.attempt)];
      if (JSON.stringify(next) === JSON.stringify(before)) return window.dash_clientside.no_update;
      return next;
    },

    refitGraph: function (style, layout) {
      setTimeout(function () {
        var el = document.getElementById("rule-graph");
        var cy = el && el._cyreg && el._cyreg.cy;
        if (!cy) return;
        cy.resize();
        cy.layout(layout).run();
      }, 50);
      return Date.now();
    },

    tokenChanged: function (token, tokenRequired) {
      if (!S.feed) {
        S.token = token || null;
        showBadge(null, tokenRequired);
      }
      return Date.now();
    },

    /* The server's answer to askLog: append it, and ask again while the store has more. */
    logFill: function (fill) {
      if (!fill || fill.n !== S.log.n) return window.dash_clientside.no_update;
      S.log.asked = null;
      if (fill.next_offset > S.log.end) appendLog([fill], true);
      if (fill.next_offset < fill.size) askLog();
      return fill.n;
    },

    /* The server drew the timeline up to ``ack.seq``: forget what it has. */
    timelineAck: function (ack) {
      if (!ack) return window.dash_clientside.no_update;
      var tl = S.tl;
      Object.keys(tl.pending).forEach(function (id) {
        var mark = tl.pending[id].mark;
        if (mark && mark <= ack.seq) delete tl.pending[id];
      });
      tl.running = ack.running || 0;
      if (tl.running || Object.keys(tl.pending).length) schedule(TIMELINE_MS);
      return ack.seq;
    },

    /* A file picker that lists fewer files than fit: what is typed goes to the server. */
    pickerSearch: function (search, more) {
      return more ? search || "" : window.dash_clientside.no_update;
    },

    theme: function (dark) {
      var mode = dark ? "dark" : "light";
      document.body.setAttribute("data-ag-theme-mode", mode);
      return mode;
    },
  };
})();

/* Cell formatters for the job table (dash-ag-grid looks them up by name). */
(function () {
  var fns = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});
  fns.sdWildcards = function (value) {
    if (!value || typeof value !== "object") return value ? String(value) : "";
    return Object.keys(value).map(function (k) { return k + "=" + value[k]; }).join(", ");
  };
  fns.sdDuration = function (value) {
    if (value === null || value === undefined || value === "") return "";
    var s = Number(value);
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  };
  fns.sdNumber = function (value, digits) {
    if (value === null || value === undefined || value === "") return "";
    return Number(value).toFixed(digits);
  };
  fns.sdBytes = function (value) {
    if (value === null || value === undefined || value === "") return "";
    var n = Number(value);
    if (n < 1000) return n + " B";
    var units = ["kB", "MB", "GB", "TB"];
    for (var i = 0; i < units.length; i++) {
      n /= 1000;
      if (n < 1000 || i === units.length - 1) return n.toFixed(1) + " " + units[i];
    }
    return "";
  };
  fns.sdTime = function (value) {
    return value ? String(value).slice(11, 19) : "";
  };
})();

/* Drop zones (dashboard/uploads.py): dcc.Upload(max_size) drops a file over the limit without a
 * word, before reading it; this says why, in the zone's note. */
(function () {
  function sizeText(n) {
    if (n < 1000) return n + " B";
    var units = ["kB", "MB", "GB", "TB"];
    for (var i = 0; i < units.length; i++) {
      n /= 1000;
      if (n < 1000 || i === units.length - 1) return n.toFixed(1) + " " + units[i];
    }
    return "";
  }

  function checkSize(ev) {
    var target = ev.target;
    var zone = target && target.closest && target.closest(".sd-upload");
    if (!zone || !window.dash_clientside || !window.dash_clientside.set_props) return;
    var files = (ev.dataTransfer && ev.dataTransfer.files) || target.files || [];
    if (!files.length) return;
    var max = Number(zone.getAttribute("data-max-bytes"));
    var big = Array.prototype.filter.call(files, function (f) { return f.size > max; });
    var text = big.length
      ? big[0].name + " (" + sizeText(big[0].size) + ") is " + zone.getAttribute("data-too-large")
      : "";
    try {
      window.dash_clientside.set_props(JSON.parse(zone.getAttribute("data-note")), {
        children: text,
        c: "red",
      });
    } catch (err) {
      return;  // the note left the page with its zone
    }
  }

  document.addEventListener("drop", checkSize, true);
  document.addEventListener("change", checkSize, true);
})();
