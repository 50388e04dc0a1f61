"""Every component id of the run page, named once.

Mantine derives ids of its own from some of these (a Drawer or Modal with id ``x`` labels itself
with ``x-title`` and ``x-body``): no id here may be one of those.
"""

from __future__ import annotations

from typing import Final

RUN_ID: Final = "run-id"
LIVE: Final = "run-live"
"""The newest run summary from the feed (written by assets/snakedeck.js)."""
PHASE: Final = "run-phase"
"""The run's state and attempt, moved (in the browser) only when one of them changes."""
RESULTS_KEY: Final = "run-results-key"
"""What the Results tab re-reads on, moved (in the browser) only while that tab is open."""
RULE_ORDER: Final = "run-rule-order"
"""The rules in pipeline order, moved only when that order changes (the timeline's lanes)."""
SHOWN: Final = "run-shown"
"""What the page shows now: the summary it was last rendered from (see live.py)."""
RULEGRAPH: Final = "run-rulegraph"

STATE: Final = "run-state"
DURATION: Final = "run-dur"
REASON: Final = "run-reason"
TITLE: Final = "run-title"
OVERALL: Final = "run-overall"
PROGRESS_LABEL: Final = "run-progress-label"
FAILED: Final = "run-failed"
FAILED_JOB: Final = "failed-job"
"""Pattern-matching id type of the buttons naming failed jobs."""

ACTIONS: Final = "run-actions"
RERUN: Final = "run-rerun"
CANCEL: Final = "run-cancel"
ACTION_MSG: Final = "run-action-msg"
CANCEL_NOTE: Final = "run-cancel-note"
CANCEL_MODAL: Final = "cancel-modal"
CANCEL_YES: Final = "cancel-yes"
CANCEL_NO: Final = "cancel-no"
RESUME: Final = "run-resume"

ETA: Final = "run-eta"
ETA_TICK: Final = "run-eta-tick"
USAGE: Final = "run-usage"
USAGE_SHOWN: Final = "run-usage-shown"
USAGE_SUMMARY: Final = "run-usage-summary"
ATTEMPTS: Final = "run-attempts"
ATTEMPTS_SHOWN: Final = "run-attempts-shown"

RULES: Final = "rule-progress"
GRAPH: Final = "rule-graph"
GRAPH_SINK: Final = "rule-graph-sink"

TABS: Final = "run-tabs"
GRID: Final = "jobs-grid"
GRID_MARKS: Final = "jobs-page-marks"
"""This tab's paging marks for the grid (see dashboard/paging.py)."""
GRID_SINK: Final = "grid-sink"
FILTER_RULE: Final = "job-rule"
FILTER_STATE: Final = "job-state"
FILTER_TEXT: Final = "job-q"

GANTT: Final = "gantt"
TIMELINE_STATE: Final = "timeline-state"
TIMELINE_FEED: Final = "timeline-feed"
"""Job summaries for the timeline, from the feed: ``{"seq", "jobs"}`` (assets/snakedeck.js)."""
TIMELINE_ACK: Final = "timeline-ack"
TIMELINE_SINK: Final = "timeline-sink"

EVENTS: Final = "events-log"

RUN_LOG: Final = "run-log"
"""The live tail of Snakemake's log (its text is kept by assets/snakedeck.js)."""
RUN_LOG_NOTE: Final = "run-log-note"
RUN_LOG_WANT: Final = "run-log-want"
"""``{"offset", "n"}``: the browser missed log text from ``offset`` (a gap, or the run ended)."""
RUN_LOG_FILL: Final = "run-log-fill"
"""The server's answer: the stored log from that offset."""
RUN_LOG_SINK: Final = "run-log-sink"

RESULTS: Final = "run-results"
RESULTS_SHOWN: Final = "run-results-shown"
RESULT_PREVIEW: Final = "result-preview"
"""Pattern-matching id type of each result's Preview button."""
PREVIEW: Final = "result-preview-box"
PREVIEW_GRID: Final = "result-grid"

DRAWER: Final = "job-drawer"
DRAWER_HEADING: Final = "job-detail-heading"
DETAIL: Final = "job-detail"
SHELL: Final = "job-shell"
FAILURE: Final = "job-failure"
