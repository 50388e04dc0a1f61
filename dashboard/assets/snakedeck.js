/* snakedeck dashboard: the live feed, in the browser.
 *
 * One dash-extensions WebSocket (id "ws") follows the current page's feed. Messages are parsed
 * and buffered here (one listener call per message, see FeedSocket below), and flushed to the page at most every FLUSH_MS: job rows are patched in
 * the AG Grid directly, the run summary goes to one dcc.Store (a single server callback
 * re-renders the progress), and the event stream is rendered here. A burst of thousands of
 * events therefore costs a handful of server callbacks, not thousands.
 *
 * When the socket closes, it reconnects by itself with back-off, asking for the events after
 * the last seq it saw (after_seq), so nothing is missed and nothing is shown twice.
 */
(function () {
  "use strict";
  var FLUSH_MS = 400;
  var GRID_REFRESH_MS = 2000;
  var SLOW_MS = 5000;
  var MAX_EVENTS = 300;
  var TERMINAL = { COMPLETE: 1, EXECUTOR_ERROR: 1, SYSTEM_ERROR: 1, CANCELED: 1 };

  function newBuffer() {
    return { events: [], runs: {}, jobs: {}, count: 0 };
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
    lastSlow: 0,
    slowPending: false,
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
    var params = [];
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
      terminal = !!TERMINAL[mine.state];
      setProps("run-live", { data: mine }, true);
    }
    var jobsChanged = Object.keys(b.jobs).length > 0;
    if (jobsChanged || S.gridStale || terminal) {
      S.gridStale = false;
      patchGrid(b.jobs, terminal);
    }
    if (b.events.length) {
      Array.prototype.push.apply(S.events, b.events);
      if (S.events.length > 2 * MAX_EVENTS) S.events = S.events.slice(-MAX_EVENTS);
      renderEvents();
    }
    if (jobsChanged || terminal) S.slowPending = true;
    var now = Date.now();
    if (S.slowPending && (terminal || now - S.lastSlow > SLOW_MS)) {
      S.slowPending = false;
      S.lastSlow = now;
      setProps("run-slow", { data: now }, true);
    } else if (S.slowPending) {
      schedule(SLOW_MS);
    }
  }

  function schedule(delay) {
    if (S.timer === null) S.timer = setTimeout(flush, delay || FLUSH_MS);
  }

  function handle(m) {
    var data = m.data || {};
    if (m.type === "event") {
      if (typeof data.seq === "number") {
        if (data.seq <= S.lastSeq && S.feed && S.feed.kind === "run") return;
        if (data.seq > S.lastSeq) S.lastSeq = data.seq;
      }
      if (S.feed && S.feed.kind === "run") S.buf.events.push(data);
    } else if (m.type === "run") {
      S.buf.runs[data.run_id] = data;
    } else if (m.type === "job") {
      if (S.feed && S.feed.kind === "run") S.buf.jobs[String(data.jobid)] = data;
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
      if (!feed || (tokenRequired && !S.token)) {
        // No feed on this page, or the server wants a token we do not have: connecting would
        // only fail (and litter the console); the badge says why instead.
        var badge = feed ? { children: "needs token", color: "red" } : { children: "idle", color: "gray" };
        S.feed = null;
        setTimeout(function () { setProps("conn-badge", badge); }, 0);
        return "";
      }
      if (feed.kind === "run" && !samePage) {
        S.lastSeq = feed.after_seq || 0;
        S.events = feed.events || [];
        setTimeout(renderEvents, 0);
      }
      return feedUrl(feed, S.token, feed.nonce || 0);
    },

    onState: function (state, tokenRequired) {
      var ready = state ? state.readyState : 3;
      if (ready === 1) {
        S.attempts = 0;
        return ["live", "teal"];
      }
      if (ready === 0) return ["connecting", "blue"];
      if (!S.feed) return ["idle", "gray"];
      // Closed: come back by ourselves, asking only for what we missed.
      S.attempts += 1;
      var delay = Math.min(500 * Math.pow(2, S.attempts - 1), 15000);
      if (S.reconnectTimer) clearTimeout(S.reconnectTimer);
      S.reconnectTimer = setTimeout(function () {
        S.reconnectTimer = null;
        if (S.feed) setProps("ws", { url: feedUrl(S.feed, S.token, S.attempts) });
      }, delay);
      if (tokenRequired && !S.token) return ["needs token", "red"];
      return ["reconnecting", "orange"];
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
  fns.sdTime = function (value) {
    return value ? String(value).slice(11, 19) : "";
  };
})();
