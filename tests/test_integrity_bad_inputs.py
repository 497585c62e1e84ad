"""A bad-input corpus over every CLI command: each case must end in ONE line ``error: ...`` naming the
problem, the documented exit code (fakeproof.cli_errors) and no traceback - before any model work.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.data import read_meta, write_meta
from test_integrity_kills import make_photo_dataset, write_decisions

USAGE, ERROR, STALE = 2, 1, 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    b = tmp_path_factory.mktemp("bad")
    good = make_photo_dataset(b / "good", identities=2, photos=2)
    (b / "afile").write_text("not a folder")
    (b / "outside.jpg").write_bytes((good / "images/id0/0.jpg").read_bytes())
    for name, text in (("dup", '{"id0/0.jpg": 0, "id0/0.jpg": 1}'), ("badjson", '{"id0/0.jpg": 0,'), ("escape", '{"../x.jpg": 0}'), ("badval", '{"id0/0.jpg": 2}')):
        d = b / name
        shutil.copytree(good, d)
        (d / "meta.json").write_text(text)
    link = b / "link"
    shutil.copytree(good, link)
    (link / "images/id0/9.jpg").symlink_to(b / "outside.jpg")
    meta = read_meta(link / "meta.json")
    write_meta(link / "meta.json", {**meta, "id0/9.jpg": 0})
    one = make_photo_dataset(b / "one", identities=1, photos=3)
    assert one
    # curation results that no longer match their dataset
    stale = b / "stale"
    shutil.copytree(good, stale)
    write_decisions(stale, {"id0/0.jpg": "not_a_face"})
    (stale / "curation/summary.json").write_text(json.dumps({"meta_sha256": "0" * 64}))
    changed = b / "changed"
    shutil.copytree(good, changed)
    write_decisions(changed, {"id0/0.jpg": "not_a_face"})
    (changed / "images/id0/0.jpg").write_bytes((good / "images/id1/0.jpg").read_bytes())
    nodecision = b / "nodecision.csv"
    nodecision.write_text("key,identity\nid0/0.jpg,id0\n")
    # infer inputs
    test_dir = b / "pairs_dir"
    (test_dir / "0").mkdir(parents=True)
    for side in ("0", "1"):
        shutil.copy(good / "images/id0/0.jpg", test_dir / "0" / f"{side}.jpg")
    leaky = b / "leaky_pairs"
    shutil.copytree(test_dir, leaky)
    (leaky / "1").symlink_to(b / "outside_pair")
    (b / "outside_pair").mkdir()
    for rows, name in ((["../../x.jpg,images/id0/0.jpg"], "climb.csv"), (["/etc/passwd,images/id0/0.jpg"], "absolute.csv"), (["images/id0/9.jpg,images/id0/0.jpg"], "symlink.csv")):
        (b / name).write_text("path_a,path_b\n" + "\n".join(rows) + "\n")
    (b / "nocols.csv").write_text("a,b\n1,2\n")
    (b / "bad_config.json").write_text('{"batch_size": 0}')
    (b / "scores.csv").write_text("similarity,expected_accept\n0.9,1\n0.1,0\n")
    return b


def cases(b: Path):
    g, f, sysout = b / "good", b / "afile", "/sys/fakeproof-no/out"
    photo = g / "images/id0/0.jpg"
    return [
        # curate
        (["curate", "clean", b / "missing"], ERROR, "meta.json: file not found"),
        (["curate", "clean", b / "dup"], ERROR, "appears more than once"),
        (["curate", "clean", b / "badjson"], ERROR, "invalid JSON"),
        (["curate", "clean", b / "escape"], ERROR, "escapes"),
        (["curate", "clean", b / "badval"], ERROR, "must be 0 (real) or 1"),
        (["curate", "clean", b / "link"], ERROR, "outside"),
        (["curate", "clean", f], ERROR, "afile"),
        (["curate", "clean", g, "--threshold", "1.5"], USAGE, "--threshold must be >= -1 and <= 1"),
        (["curate", "clean", g, "--threshold", "nan"], USAGE, "finite"),
        (["curate", "clean", g, "--threshold", "inf"], USAGE, "finite"),
        (["curate", "clean", g, "--fake-threshold", "-2"], USAGE, "--fake-threshold"),
        (["curate", "clean", g, "--out", f / "cur"], ERROR, "not a folder"),
        (["curate", "clean", g, "--out", sysout], ERROR, "not writable"),
        (["curate", "review", g, "--no-launch"], ERROR, "flags.csv: not found"),
        (["curate", "review", b / "stale", "--no-launch"], STALE, "changed since"),
        (["curate", "review", g, "--port", "0"], USAGE, "--port"),
        (["curate", "apply", g, "--from", b / "nope.csv"], ERROR, "not found"),
        (["curate", "apply", b / "changed", "--from", b / "changed/curation/flags.csv"], STALE, "changed since `curate clean`"),
        (["curate", "apply", g, "--from", b / "nodecision.csv"], ERROR, "no 'decision' column"),
        (["curate", "apply", g, "--undo"], ERROR, "no applied batch"),
        (["curate", "apply", b / "missing", "--undo"], ERROR, "meta.json: file not found"),
        # generate
        (["generate", "celeba", b / "missing", "--out", b / "x"], ERROR, "missing"),
        (["generate", "celeba", b / "missing", "--out", f / "x"], ERROR, "not a folder"),
        (["generate", "celeba", b / "missing", "--out", b / "x", "--min-photos", "0"], USAGE, "--min-photos"),
        (["generate", "deepfakes", g, "--backends", "classic", "--per-identity", "0"], USAGE, "--per-identity"),
        (["generate", "deepfakes", g, "--backends", "nope"], ERROR, "nope"),
        (["generate", "deepfakes", b / "missing", "--backends", "classic"], ERROR, "meta.json: file not found"),
        (["generate", "deepfakes", b / "link", "--backends", "classic"], ERROR, "outside"),
        (["generate", "deepfakes", b / "dup", "--backends", "classic"], ERROR, "appears more than once"),
        (["generate", "check", b / "missing"], ERROR, "meta.json: file not found"),
        (["generate", "check", b / "link"], ERROR, "outside"),
        # train
        (["train", "pairs", b / "missing"], ERROR, "meta.json: file not found"),
        (["train", "pairs", g, "--val-fraction", "1.5"], USAGE, "--val-fraction"),
        (["train", "pairs", g, "--out", f / "p.csv"], ERROR, "not a folder"),
        (["train", "run", b / "one", "--out", b / "run1"], ERROR, "at least 2 identities"),
        (["train", "run", g, "--out", b / "run2", "--batch-size", "0"], USAGE, "--batch-size"),
        (["train", "run", g, "--out", b / "run3", "--lr", "-1"], USAGE, "--lr must be > 0"),
        (["train", "run", g, "--out", b / "run3", "--lr", "nan"], USAGE, "finite"),
        (["train", "run", g, "--out", b / "run3", "--config", b / "bad_config.json"], USAGE, "--batch-size must be >= 1"),
        (["train", "run", g, "--out", f / "run"], ERROR, "not a folder"),
        (["train", "run", g, "--out", sysout], ERROR, "not writable"),
        (["train", "run", b / "link", "--out", b / "run4"], ERROR, "outside"),
        (["train", "run", g, "--out", b / "run5", "--resume"], ERROR, "nothing to resume"),
        # infer
        (["infer", "pairs", b / "missing"], ERROR, "not a folder"),
        (["infer", "score-folders", b / "leaky_pairs", "--out", b / "s.csv"], ERROR, "outside"),
        (["infer", "pairs", b / "pairs_dir", "--out", f / "s.csv"], ERROR, "not a folder"),
        (["infer", "score-folders", b / "pairs_dir", "--out", sysout], ERROR, "not writable"),
        (["infer", "score-folders", b / "pairs_dir", "--batch-size", "0"], USAGE, "--batch-size"),
        (["infer", "score-pairs", b / "climb.csv", "--root", g], ERROR, "climbs out"),
        (["infer", "score-pairs", b / "absolute.csv", "--root", g], ERROR, "absolute path"),
        (["infer", "score-pairs", b / "symlink.csv", "--root", b / "link"], ERROR, "outside"),
        (["infer", "score-pairs", b / "nocols.csv", "--root", g], ERROR, "no column 'path_a'"),
        (["infer", "score-pairs", b / "nocols.csv", "--root", b / "missing"], ERROR, "--root is not a folder"),
        (["infer", "evaluate", b / "missing.csv"], ERROR, "missing.csv"),
        (["infer", "evaluate", b / "scores.csv", "--label-column", "nope"], ERROR, "nope"),
        (["infer", "evaluate", b / "scores.csv", "--out-dir", f / "ev"], ERROR, "not a folder"),
        (["infer", "compare", photo], ERROR, "2 to 10"),
        (["infer", "compare", photo, photo, "--threshold", "2"], USAGE, "--threshold"),
        (["infer", "compare", photo, photo, "--out", f / "c.png"], ERROR, "not a folder"),
        (["infer", "export-onnx", "--opset", "3"], USAGE, "--opset"),
        (["infer", "export-onnx", "--out", f / "m.onnx"], ERROR, "not a folder"),
        (["infer", "benchmark", b / "missing"], ERROR, "not a folder"),
        (["infer", "benchmark", g, "--limit", "1"], USAGE, "--limit"),
        (["models", "prepare", "--model", "nope"], ERROR, "nope"),
    ]


def test_every_command_answers_bad_input_with_one_line_and_no_traceback(corpus):
    tried, problems, slow = 0, [], []
    for args, code, text in cases(corpus):
        args = [str(a) for a in args]
        t0 = time.perf_counter()
        r = CliRunner().invoke(app, args)
        slow.append((time.perf_counter() - t0, " ".join(args[:2])))
        tried += 1
        lines = [x for x in r.output.splitlines() if x.strip()]
        what = f"fakeproof {' '.join(args)} -> exit {r.exit_code}: {r.output.strip()[:300]!r}"
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            problems.append(f"TRACEBACK ({type(r.exception).__name__}: {r.exception}) {what}")
        elif "Traceback" in r.output:
            problems.append(f"traceback text in {what}")
        elif r.exit_code != code or len(lines) != 1 or not lines[0].startswith("error: ") or text not in lines[0]:
            problems.append(f"expected exit {code} and one line 'error: ...{text}...': {what}")
    print(f"\nbad-input corpus: {tried} cases, {len(problems)} problems; slowest: {sorted(slow, reverse=True)[:4]}")
    assert not problems, "\n".join(problems)
    assert tried >= 64
