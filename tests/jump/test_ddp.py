"""DDP under torchrun: 2 processes, gloo, CPU; ranks end every jump bit-identical and agree."""

import json
from pathlib import Path

import pytest
from _torchrun import torchrun

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_plain_ddp_loop_jumps_identically_on_two_ranks(tmp_path):
    out = tmp_path / "result.json"
    torchrun([str(HERE / "ddp_worker.py"), "--out", str(out)], timeout=240)
    result = json.loads(out.read_text())
    assert result["world"] == 2
    checks = result["checks"]
    # n=2, every=2: an attempt after epochs 2, 4, 6, 8 (index 1, 3, 5, 7).
    assert [c["step"] for c in checks] == [2, 4, 6, 8]
    for c in checks:
        assert c["params_identical"], c
        # Accepted jumps end with rank 0's refreshed BatchNorm statistics on every rank; a
        # rejected jump restores each rank's own previous buffers (plain DDP keeps them per
        # rank between forwards, and broadcasts rank 0's at the next forward).
        if c["accepted"]:
            assert c["buffers_identical"], c
        assert c["decisions_identical"], c
    accepted = [c["accepted"] for c in checks]
    assert True in accepted and False in accepted  # the third forecast is far away: rejected on both ranks
    assert accepted[2] is False and checks[2]["decisions"][0]["reason"] == "rejected by the guard"
    # Only rank 0 ran the forecaster; only rank 0 wrote the state file.
    assert result["forecaster_calls"] == [4, 0]
    assert "gfm_jump_state.safetensors" in result["files"]
    assert not any(f.startswith("gfm_jump_state.safetensors.rank") for f in result["files"])
