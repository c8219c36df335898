"""Append-only in the database too (PostgreSQL): refuse UPDATE on audit events, and DELETE unless retention is running.

Retention (apps.audit.services.prune_audit_events) sets ``gpux.audit_prune = 'on'`` with ``set_config(..., true)``,
i.e. for its own transaction only. Other databases (the embedded SQLite) rely on the model's guards and the hash
chain. Statement-level triggers: one check per statement, not per row, so pruning millions of rows stays cheap.
TRUNCATE is deliberately not refused (Django's test flush uses it); it needs table ownership, and the verifier
catches what it does.
"""

from django.db import migrations

CREATE = (
    """
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit events are append-only: UPDATE of audit_auditevent is refused'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' AND coalesce(current_setting('gpux.audit_prune', true), '') <> 'on' THEN
        RAISE EXCEPTION 'audit events are append-only: DELETE from audit_auditevent is refused outside retention'
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Old events are removed by manage.py prune_audit, which writes a checkpoint first.';
    END IF;
    RETURN NULL;
END;
$$
""",
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent",
    """
CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditevent_append_only()
""",
)

DROP = (
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_auditevent_append_only()",
)


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_initial"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
