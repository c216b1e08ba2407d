"""`prune-models`: delete old models from the registry, keeping the active ones and the newest K others.

Artifacts are stored in the table (bytea), so every training run grows it; older models are
only useful for a rollback, which the newest few cover. The active model is never deleted,
whatever its age, because every recommender replica may load it at any moment. MODELS_KEEP counts
the inactive models only, so an active model among the newest never costs a rollback candidate.
"""

from __future__ import annotations

import structlog

from janitor.context import TaskContext
from janitor.report import TaskOutcome

log = structlog.get_logger(__name__)

_PRUNABLE = """
SELECT id FROM models
WHERE NOT active
  AND id NOT IN (SELECT id FROM models WHERE NOT active ORDER BY created_at DESC, id DESC LIMIT %(keep)s)
ORDER BY created_at, id
"""
_DELETE = """
DELETE FROM models
WHERE NOT active
  AND id NOT IN (SELECT id FROM models WHERE NOT active ORDER BY created_at DESC, id DESC LIMIT %(keep)s)
RETURNING id
"""


async def run_prune_models(ctx: TaskContext) -> TaskOutcome:
    params = {"keep": ctx.settings.models_keep}
    if ctx.dry_run:
        cur = await ctx.conn.execute(_PRUNABLE, params)
        ids = [row[0] for row in await cur.fetchall()]
        for model_id in ids:
            log.info("would delete model", model_id=model_id, dry_run=True)
    else:
        async with ctx.conn.transaction():
            cur = await ctx.conn.execute(_DELETE, params)
            ids = sorted(row[0] for row in await cur.fetchall())
        for model_id in ids:
            log.info("deleted model", model_id=model_id)
    return TaskOutcome(counts={"models_deleted": len(ids)}, details={"models": ids})
