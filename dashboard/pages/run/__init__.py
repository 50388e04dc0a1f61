"""One run, live: progress and its estimate, per-rule bars, rule graph, attempts, job table,
timeline, the Snakemake log, results, events, job detail, and Resume/Rerun/Cancel.

The page is rendered once from the service (layout.py); after that the WebSocket feed (see
``assets/snakedeck.js``) pushes run summaries (live.py patches what changed), patches job rows
in the grid in place (jobs.py), hands job summaries to the timeline (timeline_panel.py), and
appends log chunks to the Log tab (run_log.py).
"""

from dashboard.pages.run.callbacks import register
from dashboard.pages.run.jobs import sort_from_model
from dashboard.pages.run.layout import layout

__all__ = ["layout", "register", "sort_from_model"]
