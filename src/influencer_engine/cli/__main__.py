"""``python -m influencer_engine.cli``."""

from influencer_engine.cli import main

main()
