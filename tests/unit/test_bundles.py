"""Private workflows (WES attachments): the name checks, the WES form's rules for them, the
bundle read as a workflow, and the runner's staging of it from a real (SQLite) store."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from runner.bundle import STAGED_MARK, BundleRefused, stage_bundle
from runner.inputs import InputsError
from snakedeck import bundles
from snakedeck.bundles import Attachment, BundleError
from snakedeck.rundir import run_dir
from snakedeck.service.wes import BadRequest, RunRequestForm, parse_request, snakemake_version
from snakedeck.settings import Settings, SettingsError
from snakedeck.store import open_store
from snakedeck.workflows import WorkflowDefinitionError, load_bundle

GOOD = ["Snakefile", "rules/count.smk", "scripts/a b.py", "envs/x.yaml", ".hidden", "a..b"]


@pytest.mark.parametrize("name", GOOD)
def test_relative_names_inside_the_bundle_are_taken(name: str) -> None:
    assert bundles.check_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty file name"),
        ("..", "'..' segment"),
        ("../x", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/..", "'..' segment"),
        ("/etc/passwd", "absolute path"),
        ("C:/x", "absolute path"),
        ("c:x", "absolute path"),
        ("rules\\count.smk", "backslash"),
        ("\\\\server\\share", "backslash"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a//b", "empty or '.' segment"),
        ("./Snakefile", "empty or '.' segment"),
        ("dir/", "empty or '.' segment"),
        ("x" * 300, "longer than"),
        ("é" * 65, "longer than 128 bytes"),
        ("a\x85b", "control character"),
        ("a\ud800b", "not valid Unicode"),
    ],
)
def test_names_that_could_leave_the_bundle_are_refused(name: str, why: str) -> None:
    with pytest.raises(BundleError, match=why):
        bundles.check_name(name)


def test_duplicates_and_file_folder_clashes_are_refused() -> None:
    assert bundles.check_names(["Snakefile", "rules/a.smk", "rules/b.smk"])
    with pytest.raises(BundleError, match="more than once"):
        bundles.check_names(["Snakefile", "rules/a.smk", "Snakefile"])
    with pytest.raises(BundleError, match="both as a file and as a folder"):
        bundles.check_names(["Snakefile", "rules", "rules/a.smk"])


def test_limits_and_the_entry() -> None:
    files = [Attachment("Snakefile", b"x" * 10), Attachment("b", b"y" * 10)]
    bundles.check_limits(files, max_files=2, max_bytes=20)
    with pytest.raises(BundleError, match=r"at most 1 .*SNAKEDECK_ATTACHMENT_MAX_FILES"):
        bundles.check_limits(files, max_files=1, max_bytes=20)
    with pytest.raises(BundleError, match=r"more than 19 bytes.*SNAKEDECK_ATTACHMENT_MAX_BYTES"):
        bundles.check_limits(files, max_files=2, max_bytes=19)
    assert bundles.check_entry("", ["Snakefile"]) == "Snakefile"
    assert bundles.check_entry("./wf/main.smk", ["wf/main.smk"]) == "wf/main.smk"
    with pytest.raises(BundleError, match="names no attached file"):
        bundles.check_entry("Snakefile", ["main.smk"])
    with pytest.raises(BundleError, match="URL"):
        bundles.check_entry("https://host/Snakefile", ["Snakefile"])
    with pytest.raises(BundleError, match=r"'\.\.' segment"):
        bundles.check_entry("../Snakefile", ["Snakefile"])


def test_a_stored_bundle_description_is_checked_again() -> None:
    sha = "0" * 64
    doc = {"source": "attachment", "entry": "Snakefile",
           "files": [{"path": "Snakefile", "sha256": sha, "size": 3}]}  # fmt: skip
    assert bundles.parse_doc(doc)["size"] == 3
    for broken, why in [
        ({**doc, "source": "registry"}, "not described"),
        ({**doc, "files": []}, "no files"),
        ({**doc, "files": [{"path": "../x", "sha256": sha, "size": 1}]}, "'..'"),
        ({**doc, "files": [{"path": "Snakefile", "sha256": "x", "size": 1}]}, "stored content"),
        ({**doc, "entry": "main.smk"}, "names no attached file"),
    ]:
        with pytest.raises(BundleError, match=why):
            bundles.parse_doc(broken)
    assert bundles.is_private({"workflow_source": "attachment"})
    assert not bundles.is_private({"workflow": "attachment"})  # the name alone says nothing


def _form(files: list[Attachment], parts: int | None = None, **fields: str) -> RunRequestForm:
    base = {"workflow_type": "SMK", "workflow_type_version": snakemake_version()}
    return RunRequestForm(
        fields={**base, **fields},
        attachments=len(files) if parts is None else parts,
        files=files,
    )


def test_the_wes_form_with_attachments() -> None:
    files = [Attachment("Snakefile", b"rule all:\n"), Attachment("rules/a.smk", b"")]
    with pytest.raises(BadRequest, match="workflow_attachment is refused"):
        parse_request(_form(files), max_cores=2)
    got = parse_request(_form(files), max_cores=2, allow_attachments=True)
    assert got.workflow == "Snakefile" and [a.name for a in got.attachments] == [
        "Snakefile",
        "rules/a.smk",
    ]
    wf = parse_request(
        _form(files, workflow_url="rules/a.smk"), max_cores=2, allow_attachments=True
    )
    assert wf.workflow == "rules/a.smk"
    for bad, said in [
        (_form(files, parts=3), "needs a filename"),
        (_form([*files, Attachment("../x", b"")]), "'..' segment"),
        (_form([*files, Attachment("Snakefile", b"")]), "more than once"),
        (_form(files, workflow_url="main.smk"), "names no attached file"),
        (_form([Attachment("Snakefile", b"x" * 11)]), "SNAKEDECK_ATTACHMENT_MAX_BYTES"),
    ]:
        with pytest.raises(BadRequest, match=said):
            parse_request(bad, max_cores=2, allow_attachments=True, max_bytes=10)


def test_the_switch_is_snakedeck_allow_attachments() -> None:
    assert Settings.from_env({}).allow_attachments is False
    on = Settings.from_env({"SNAKEDECK_ALLOW_ATTACHMENTS": "true"})
    assert on.allow_attachments is True
    assert on.to_env()["SNAKEDECK_ALLOW_ATTACHMENTS"] == "true"
    with pytest.raises(SettingsError, match="ATTACHMENT_MAX"):
        Settings.from_env({"SNAKEDECK_ATTACHMENT_MAX_FILES": "0"})


def test_a_bundle_is_a_workflow_with_defaults_or_its_own_definition(tmp_path: Path) -> None:
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "main.smk").write_text("rule all:\n")
    wf = load_bundle(tmp_path, "wf/main.smk")
    assert wf.name == "attachment" and wf.snakefile == (tmp_path / "wf" / "main.smk").resolve()
    assert wf.inputs == () and wf.results == () and wf.config_schema == {"type": "object"}
    with pytest.raises(WorkflowDefinitionError, match="not among the attachments"):
        load_bundle(tmp_path, "Snakefile")
    with pytest.raises(WorkflowDefinitionError, match="not among the attachments"):
        (tmp_path / "outside.smk").write_text("rule all:\n")
        load_bundle(tmp_path / "wf", "../outside.smk")
    (tmp_path / "workflow.yaml").write_text(
        "name: anything\nversion: 2\nconfig_schema: {type: object, required: [n]}\n"
        "results: [{path: out.txt, kind: text}]\n"
    )
    own = load_bundle(tmp_path, "wf/main.smk")
    assert own.name == "attachment" and own.version == "2"
    assert own.config_schema["required"] == ["n"] and own.results[0].path == "out.txt"
    (tmp_path / "workflow.yaml").write_text("inputs: 3\n")
    with pytest.raises(WorkflowDefinitionError) as exc:
        load_bundle(tmp_path, "wf/main.smk")
    assert str(exc.value).startswith("workflow.yaml: ") and str(tmp_path) not in str(exc.value)


def test_the_runner_stages_a_bundle_from_the_store_only_when_allowed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", allow_attachments=True)
    store = open_store(settings)
    store.ensure_schema()
    try:
        files = {"Snakefile": b'include: "rules/a.smk"\n', "rules/a.smk": b"rule a:\n"}
        doc = {
            "source": "attachment",
            "entry": "Snakefile",
            "files": [
                {"path": p, "sha256": store.put_blob(io.BytesIO(d)).sha256, "size": len(d)}
                for p, d in files.items()
            ],
        }
        rd = run_dir(settings.runs_dir, "01aaaaaaaaaaaaaaaa").create()
        wf = stage_bundle(store, rd, doc, settings)
        assert wf.snakefile == (rd.workflow / "Snakefile").resolve()
        assert (rd.workflow / "rules" / "a.smk").read_bytes() == b"rule a:\n"
        assert (rd.workflow / STAGED_MARK).is_file()
        (rd.workflow / "rules" / "a.smk").write_bytes(b"rule a: # the run's own copy\n")
        stage_bundle(store, rd, doc, settings)  # a resume: the copy already there is used
        assert b"own copy" in (rd.workflow / "rules" / "a.smk").read_bytes()

        with pytest.raises(BundleRefused, match="SNAKEDECK_ALLOW_ATTACHMENTS is off"):
            stage_bundle(store, rd, doc, settings.with_(allow_attachments=False))
        other = run_dir(settings.runs_dir, "01bbbbbbbbbbbbbbbb").create()
        forged = {**doc, "files": [{**doc["files"][0], "sha256": hashlib.sha256(b"?").hexdigest()}]}
        with pytest.raises(InputsError, match="missing from the store"):
            stage_bundle(store, other, forged, settings)
        with pytest.raises(BundleRefused, match=r"'\.\.' segment"):
            escaping = {**doc, "files": [{**doc["files"][0], "path": "../../x"}]}
            stage_bundle(store, other, escaping, settings)
        assert not (settings.runs_dir / "x").exists()
    finally:
        store.close()
