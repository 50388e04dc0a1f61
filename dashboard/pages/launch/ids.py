"""Every component id of the launch form, named once."""

from __future__ import annotations

from typing import Final

from dash import ALL

from dashboard import schema_form

WORKFLOW: Final = "launch-workflow"
UNAVAILABLE: Final = "launch-unavailable"
"""The workflows registered here that this server cannot run, and why."""
ABOUT: Final = "launch-about"
INPUTS: Final = "launch-inputs"
FIELDS_BOX: Final = "launch-fields"
TAGS: Final = "launch-tags"
ERROR: Final = "launch-error"
SUBMIT: Final = "launch-submit"

CONFIG_FILE: Final = "launch-config-file"
CONFIG_UPLOAD: Final = "launch-config-upload"
CONFIG_SIZE_NOTE: Final = "launch-config-size-note"
CONFIG_NOTE: Final = "launch-config-note"
"""What the picked config file set in the form (or why it could not)."""

# Pattern-matching id types, one component of each per declared input (key ``name``).
PICK: Final = "input-pick"
PICK_UPLOAD: Final = "input-upload"
PICK_SIZE_NOTE: Final = "input-size-note"
PICK_NOTE: Final = "input-note"
"""The file just uploaded from the form (or why it was not registered)."""
PICK_UPLOADED: Final = "input-uploaded"
"""The id of the file the note describes (the note goes when another file is picked)."""
PICK_MORE: Final = "input-more"
"""Whether more files fit than the picker lists (then typing searches the registry)."""
PICK_SEARCH: Final = "input-search"
"""What was typed into such a picker, for the server to search (assets/snakedeck.js)."""
SHEET_ERRORS: Final = "input-sheet-errors"
"""A sample sheet's problems, one line per row and column."""

FIELDS: Final = {"type": schema_form.FIELD_TYPE, "name": ALL}
BOOL_FIELDS: Final = {"type": schema_form.BOOL_FIELD_TYPE, "name": ALL}
PICKS: Final = {"type": PICK, "name": ALL}
SHEETS: Final = {"type": SHEET_ERRORS, "name": ALL}


def one(kind: str, name: str) -> dict[str, str]:
    return {"type": kind, "name": name}
