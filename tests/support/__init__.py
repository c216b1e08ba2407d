"""Helpers the tests share: servers, databases, service subprocesses."""
