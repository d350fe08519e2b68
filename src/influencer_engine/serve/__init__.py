"""`ie serve`: the REST API and the planners' web page (FastAPI under uvicorn)."""

from influencer_engine.serve.app import create_app
from influencer_engine.serve.state import Server, limit_native_threads, load_server

__all__ = ["Server", "create_app", "limit_native_threads", "load_server"]
