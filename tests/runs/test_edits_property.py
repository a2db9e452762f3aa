"""A property of edits files, on random entries (hypothesis): whatever mix of good and bad entries a
file holds, the run exits 0 (all good), 1 (some entries bad or failed) or 2 (nothing usable), prints
no traceback, and does every good entry exactly once, however often the file lists it or is rerun."""
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2p_real.artifacts import save_inversion
from p2p_real.cli import main
from p2p_real.images import load_image
from p2p_real.pipeline import invert
from p2p_real.random_models import tiny_random

SOURCE = "a close-up photo of a tabby cat"
GOOD, BAD_FIELD, BAD_WORD = "good", "bad field", "bad word"  # what each drawn value makes of its entry
TARGETS = [(GOOD, "a close-up photo of a tabby dog"), (GOOD, "a close-up photo of a fluffy tabby cat"),
           (BAD_FIELD, ""), (BAD_FIELD, None), (BAD_FIELD, 5)]
WINDOWS = [(GOOD, 0.4), (GOOD, [0.2, 0.6]), (GOOD, {"default_": 0.4, "tabby": [0.0, 0.8]}),
           (BAD_FIELD, 5), (BAD_FIELD, "0.4"), (BAD_FIELD, [0.8, 0.2]), (BAD_FIELD, {"tabby": "x"})]
REWEIGHTS = [(GOOD, None), (GOOD, {"tabby": 2}), (BAD_FIELD, {"tabby": "x"}), (BAD_FIELD, {"tabby": 3}),
             (BAD_FIELD, "tabby"), (BAD_WORD, {"horse": 2})]
entries = st.lists(st.tuples(st.sampled_from(TARGETS), st.sampled_from(WINDOWS), st.sampled_from(REWEIGHTS)),
                   min_size=1, max_size=4)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    folder = tmp_path_factory.mktemp("artifact") / "chelsea"
    model = tiny_random(seed=0)
    photo = load_image("data/photos/chelsea.jpg", model.resolution)
    [inversion] = invert(model, [photo], [SOURCE], method="ddim", num_steps=2)
    save_inversion(inversion, folder)
    return folder


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=entries)
def test_any_edits_file_exits_as_documented_and_does_each_good_entry_once(artifact, tmp_path_factory, capsys, drawn):
    work = tmp_path_factory.mktemp("run")
    listed, verdicts = [], []
    for (target_verdict, target), (window_verdict, window), (reweight_verdict, reweight) in drawn:
        entry = {"artifact": str(artifact), "target": target, "cross_replace_steps": window}
        if reweight is not None:
            entry["reweight"] = reweight
        listed.append(entry)
        verdicts.append(BAD_FIELD if BAD_FIELD in (target_verdict, window_verdict, reweight_verdict)
                        else reweight_verdict if reweight_verdict == BAD_WORD else GOOD)
    (work / "edits.yaml").write_text(yaml.safe_dump({"edits": listed}))
    good = {json.dumps(entry, sort_keys=True) for entry, verdict in zip(listed, verdicts) if verdict == GOOD}
    argv = ["edit", str(work / "edits.yaml"), "--output", str(work / "out"), "--model", "tiny-random", "--quiet"]

    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    if all(verdict == BAD_FIELD for verdict in verdicts):
        assert code == 2
    else:
        assert code == (0 if all(verdict == GOOD for verdict in verdicts) else 1), (code, verdicts, captured.err)
    edited = sorted((work / "out").rglob("edited.png"))  # rglob of a missing folder finds nothing
    assert len(edited) == len(good), (listed, verdicts, edited)

    stamps = [path.stat().st_mtime_ns for path in edited]
    assert main(argv) == code  # a rerun does nothing new and says the same
    capsys.readouterr()
    assert [path.stat().st_mtime_ns for path in edited] == stamps
    assert sorted((work / "out").rglob("edited.png")) == edited
