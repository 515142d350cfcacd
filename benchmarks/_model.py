"""What the sampler-geometry scripts (``step_cost.py``, ``mass_geometry.py``) share: the
default model's inputs on a leaderboard table."""

from __future__ import annotations


def model_inputs(path: str):
    """The default ``ModelConfig``'s arrays for the table at ``path``: ``(data, config,
    model_args, model_kwargs, dense)``, ``dense`` the sites of the sampler's dense block."""
    import pandas as pd

    from sloth_bayes.data import validate_table
    from sloth_bayes.inference import _global_sites
    from sloth_bayes.model import ModelConfig, encode, make_encoding

    config = ModelConfig()
    clean, meta = validate_table(pd.read_csv(path), None)
    data = encode(clean, make_encoding(clean, meta, config), config.n_skills)
    return data, config, (data, config), {"y": data.y}, _global_sites(config, data)
