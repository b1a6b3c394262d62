"""JumpSchedule and target_m on their own: counters, due, target m, room left, state (no model)."""

import pytest

from gfm_accel.jump.config import JumpConfig
from gfm_accel.jump.schedule import JumpSchedule, decayed_horizon, far_target, horizon_at, target_m


def _epochs(schedule, held_cap, epochs):
    """Epoch indices after which a jump is due, when no jump is ever accepted."""
    due, held = [], 1
    for e in range(epochs):
        if schedule.epoch_ended(e):
            held = min(held + 1, held_cap)
            if schedule.snapshot_taken(held):
                due.append(e)
    return due


def test_periodic_due_every_p_snapshots_and_not_past_the_end():
    cfg = JumpConfig(mode="periodic", n=2, horizon=3, every=2, unit="epoch")
    s = JumpSchedule(cfg)
    s.begin(total=10)
    # due at counters 2, 4, 6 (6 + 3 <= 10); 8 + 3 > 10 is past the planned end
    assert _epochs(s, 3, 10) == [1, 3, 5]
    s2 = JumpSchedule(JumpConfig(mode="periodic", n=2, horizon=3, every=2, unit="epoch", jump_past_end=True))
    s2.begin(total=10)
    assert _epochs(s2, 3, 10) == [1, 3, 5, 7]


def test_step_unit_snapshots_every_k_steps_from_start():
    s = JumpSchedule(JumpConfig(mode="far", n=2, unit="step", every_n_steps=4))
    s.begin(total=50, start=10)
    taken = [step for step in range(11, 30) if s.step_ended(step)]
    assert taken == [14, 18, 22, 26]
    assert s.step_ended(18) is False and s.steps == 29  # a step already seen is ignored
    assert s.target_m() == (50 - 10) // 4 == 10


def test_far_mode_one_attempt_and_accept_restarts_periodic_windows():
    far = JumpSchedule(JumpConfig(mode="far", n=2, unit="epoch"))
    far.begin(total=8)
    assert not far.finished()
    far.attempted()
    assert far.finished() and far.epoch_ended(0) is False
    per = JumpSchedule(JumpConfig(mode="periodic", n=2, every=3, unit="epoch", max_jumps=1))
    per.begin()
    for e in range(3):
        per.epoch_ended(e)
        per.snapshot_taken(3)
    assert per.seg == 3
    per.accepted()
    assert per.seg == 0 and per.jumps == 1 and per.finished()


def test_target_m_is_the_one_definition():
    assert target_m(JumpConfig(mode="periodic", n=4, horizon=10, every=5, unit="epoch")) == 14
    assert target_m(JumpConfig(mode="far", n=4, unit="epoch"), total=30) == 30
    assert target_m(JumpConfig(mode="far", n=4, unit="epoch"), total=30, start=6) == 24
    assert target_m(JumpConfig(mode="far", n=4, horizon=12, unit="epoch"), total=30) == 12
    assert target_m(JumpConfig(mode="far", n=2, unit="step", every_n_steps=5), total=100) == 20
    with pytest.raises(ValueError, match="planned run length"):
        far_target(JumpConfig(mode="far", n=4, unit="epoch"), None)
    with pytest.raises(ValueError, match="must be larger than n=4"):
        far_target(JumpConfig(mode="far", n=4, unit="epoch"), 4)


def test_room_left_and_first_jump():
    s = JumpSchedule(JumpConfig(mode="far", n=4, unit="step", every_n_steps=5))
    s.begin(total=100, start=70)
    assert s.room_left() == 6 and s.has_room()
    s.begin(total=100, start=80)
    assert s.room_left() == 4 and not s.has_room()
    p = JumpSchedule(JumpConfig(mode="periodic", n=4, horizon=10, every=5, unit="step", every_n_steps=5))
    p.begin(total=200)
    # the first jump comes after P=5 snapshots (step 25) and needs K=10 more snapshots before the end
    assert p.first_jump() == (25, 75)
    assert JumpSchedule(JumpConfig(unit="epoch", n=2, mode="periodic")).room_left() is None


def test_state_round_trip_and_validation():
    s = JumpSchedule(JumpConfig(mode="periodic", n=2, unit="epoch"))
    s.begin(total=10, start=3)
    s.epoch_ended(3)
    s.snapshot_taken(2)
    t = JumpSchedule(s.config)
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict() == {
        "epochs": 4, "steps": 0, "seg": 1, "jumps": 0, "far_done": False, "start": 3, "rejections": 0
    }
    with pytest.raises(ValueError, match="start=12 is not before the planned end total=10"):
        s.begin(total=10, start=12)
    with pytest.raises(ValueError, match="total must be a positive integer"):
        s.begin(total=0)


def test_decayed_horizon_linear_and_cosine():
    assert [decayed_horizon(10, 1, c, 20, "linear") for c in (0, 2, 9, 10, 11, 19, 20, 25)] == [10, 9, 6, 6, 5, 1, 1, 1]
    # cosine: 1 + 9 (1 + cos(pi c / 20)) / 2 = 10, 8.68, 5.5, 2.32, 1 at c = 0, 5, 10, 15, 20
    assert [decayed_horizon(10, 1, c, 20, "cosine") for c in (0, 5, 10, 15, 20)] == [10, 9, 6, 2, 1]
    assert decayed_horizon(40, 1, 500, 1000, "linear") == 21  # NiNo's range: 1 + 19.5 -> 21
    assert decayed_horizon(10, 1, 7, 20, "none") == 10


def test_decay_sets_target_m_and_due():
    cfg = JumpConfig(mode="periodic", n=2, horizon=10, every=2, unit="epoch", horizon_decay="linear", horizon_min=2)
    assert target_m(cfg, total=20, counter=10) == 2 + 6  # 2 + 8 * 10/20
    assert horizon_at(cfg, 0, 20) == 10 and horizon_at(JumpConfig(), None, None) == 10
    with pytest.raises(ValueError, match="horizon_decay='linear' needs the planned run length"):
        target_m(cfg, counter=4)
    s = JumpSchedule(cfg)
    s.begin(total=20)
    # without decay (K = 10) the last jump would be at counter 10; with it K shrinks, so
    # c + K_c <= 20 holds up to c = 16 (K = 4) and fails at c = 18 (K = 3 > 2 left)
    assert _epochs(s, 3, 20) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert s.first_jump() == (22, 24)  # past the end K is horizon_min: 22 + 2
