"""Inference settings that depend on the model configuration."""

from sloth_bayes.inference import GLOBAL_SITES, _global_sites
from sloth_bayes.model import ModelConfig


def test_dense_block_drops_sites_of_switched_off_terms():
    everything = ModelConfig(llm_residual=True, family_bench="nested", instruct_bench=True)
    assert _global_sites(everything) == GLOBAL_SITES
    assert "sigma_sub_bench" not in _global_sites(ModelConfig(family_bench="coarse"))
    reduced = _global_sites(ModelConfig(slope_deviations=False, llm_residual=False))
    assert "tau_slope" not in reduced and "sigma_llm" not in reduced
    assert "loadings_free" in reduced
