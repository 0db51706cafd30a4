"""three_body_rules: the rules pick the intended action; a rule that never switches is exactly
the fixed mu; the quick run writes its table."""

import json

import jax.numpy as jnp
import numpy as np
import three_body_rules as rules_script
from three_body_baselines import evaluate, evaluate_fixed, make_evaluator
from three_body_experiment import eval_params

from accelrl.envs import three_body as tb


def _obs(separation: float, accuracy: float) -> np.ndarray:
    """One observation: bodies 0 and 1 ``separation`` au apart, body 2 far; -log10 |dE|."""
    obs = np.zeros(19, np.float32)
    obs[0:3] = [0.0, 0.0, 0.0]
    obs[3:6] = [separation / 10.0, 0.0, 0.0]
    obs[6:9] = [5.0, 5.0, 0.0]  # 50 au away
    obs[-1] = accuracy
    return obs


def test_rule_policy_switches_on_distance_and_error():
    obs = jnp.asarray(np.stack([_obs(0.5, 0.0), _obs(3.0, 12.0), _obs(3.0, 8.5)]))
    distance = jnp.asarray([rules_script.DISTANCE, 6, 3, 1.0], jnp.float32)
    np.testing.assert_array_equal(rules_script.rule_policy(distance, obs), [3, 6, 6])
    error = jnp.asarray([rules_script.ERROR, 7, 4, 9.0], jnp.float32)
    # |dE| = 0 (accuracy 0) and 1e-12 are fine; 10 ** -8.5 is above 1e-9
    np.testing.assert_array_equal(rules_script.rule_policy(error, obs), [7, 7, 4])


def test_a_rule_that_never_switches_is_the_fixed_mu():
    env = tb.ThreeBody()
    params = eval_params("default", 6)
    seeds = np.arange(3)
    fixed = evaluate_fixed(env, params, 6, seeds)
    same = evaluate(
        env,
        params,
        jnp.asarray([rules_script.DISTANCE, 6, 6, 2.0], jnp.float32),
        seeds,
        make_evaluator(env, rules_script.rule_policy),
    )
    for key in ("energy_error", "substeps", "checks", "terminated"):
        np.testing.assert_array_equal(same[key], fixed[key])
    other = evaluate_fixed(env, params, 3, seeds)
    assert not np.array_equal(other["substeps"], fixed["substeps"])


def test_quick_run_writes_table(tmp_path):
    result = rules_script.main(rules_script.Args(out=str(tmp_path), quick=True))
    assert len(result["rules"]) == 4 and len(result["fixed"]) == tb.ThreeBody().num_actions
    saved = json.loads((tmp_path / "rules.json").read_text())
    assert [r["rule"] for r in saved["rules"]] == [r["rule"] for r in result["rules"]]
    table = (tmp_path / "rules.md").read_text()
    assert table.count("\n| mu = ") == 4 and "dominate a fixed mu" in table
