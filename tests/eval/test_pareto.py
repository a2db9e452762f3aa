"""The Pareto front of (fidelity, edit) points and the sweep's choice, on synthetic points, each
checked against a computation of its own (a sort-based front, a brute-force rule)."""
import math
import random

import pytest

from p2p_real.eval.pareto import choose, pareto_front

NAN = math.nan


def front_by_sorting(points):
    """Independently: sweep the points from the most faithful down; a point is on the front when no
    point at least as faithful has an edit score at least as high, with one of the two strictly better."""
    on_front = []
    for index, (fidelity, edit_score) in enumerate(points):
        if math.isnan(fidelity) or math.isnan(edit_score):
            on_front.append(False)
            continue
        rivals = sorted((p for j, p in enumerate(points) if j != index and not any(map(math.isnan, p))), reverse=True)
        beaten = any(f >= fidelity and e >= edit_score and (f, e) != (fidelity, edit_score) for f, e in rivals)
        on_front.append(not beaten)
    return on_front


def test_dominated_points_leave_the_front_and_ties_stay():
    points = [(30.0, 0.5), (30.0, 0.5), (28.0, 0.9), (28.0, 0.7), (25.0, 0.9), (31.0, 0.1), (29.0, 0.5)]
    # (28, 0.7) loses to (28, 0.9) on edit alone; (25, 0.9) to (28, 0.9) on fidelity alone; (29, 0.5) to (30, 0.5).
    assert pareto_front(points) == [True, True, True, False, False, True, False]


def test_a_point_that_could_not_be_scored_is_never_on_the_front_nor_beats_one():
    assert pareto_front([(NAN, 1.0), (20.0, NAN), (10.0, 0.1), (50.0, 0.0)]) == [False, False, True, True]
    assert pareto_front([]) == []
    assert choose([(NAN, 1.0), (20.0, NAN)]) is None


@pytest.mark.parametrize("seed", range(20))
def test_the_front_matches_a_sort_based_one_and_the_choice_is_on_it(seed):
    rng = random.Random(seed)
    # few distinct values, so that ties on one axis and on both are common
    points = [(float(rng.randint(20, 26)), rng.choice([0.0, 0.5, 1.0, 0.25])) for _ in range(rng.randint(1, 15))]
    front = pareto_front(points)
    assert front == front_by_sorting(points)
    chosen = choose(points, tolerance=rng.choice([0.0, 0.1, 0.5, 1.0]))
    assert front[chosen]


def test_the_choice_is_the_most_faithful_of_the_nearly_strongest_edits():
    points = [(20.0, 30.0), (24.0, 29.5), (27.0, 28.0), (29.0, 20.0)]  # edit scores range over 10
    assert choose(points, tolerance=0.0) == 0  # only the strongest edit qualifies
    assert choose(points, tolerance=0.1) == 1  # within 1 of 30
    assert choose(points, tolerance=0.2) == 2  # within 2 of 30
    assert choose(points, tolerance=1.0) == 3  # every edit qualifies: the most faithful


def test_ties_in_fidelity_go_to_the_stronger_edit_then_to_the_first():
    assert choose([(25.0, 0.5), (25.0, 1.0), (25.0, 1.0)], tolerance=1.0) == 1
    assert choose([(25.0, 0.5), (25.0, 0.5)]) == 0  # all equal: the range is 0, and both qualify
