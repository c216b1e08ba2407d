"""API configuration."""

from __future__ import annotations

from pydantic import Field

from stocktrack_common.settings import CommonSettings


class ApiSettings(CommonSettings):
    api_max_limit: int = Field(default=5000, ge=1, description="largest page a client may ask for")
    api_default_limit: int = Field(default=500, ge=1)
