"""cdk.out.example is the current synthesized template of app.py (run `make example`)."""

from __future__ import annotations

from tools.write_example import EXAMPLE_DIR, normalize, synthesize_example


def test_example_matches_a_fresh_synth_of_the_bundled_app() -> None:
    fresh = synthesize_example()
    assert fresh, "the bundled app synthesized no template"
    stored = {p.name: p.read_text() for p in EXAMPLE_DIR.glob("*.template.json")}
    assert stored.keys() == fresh.keys(), "run `make example`"
    for name, content in fresh.items():
        assert stored[name] == content, f"{name} is stale: run `make example`"


def test_example_normalizes_asset_hashes() -> None:
    digest = "a" * 64
    assert normalize(f'"S3Key": "{digest}.zip"') == '"S3Key": "<asset-hash>.zip"'
