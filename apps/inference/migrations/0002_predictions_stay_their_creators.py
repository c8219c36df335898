"""Predictions, batch jobs and pipeline runs made before ``Job.creator_keeps_access`` are their creators' own too."""

from django.db import migrations

KINDS = ["inference.predict", "inference.predict_batched", "inference.batch", "inference.pipeline"]


def mark_kept(apps, schema_editor):
    apps.get_model("core", "Job").objects.filter(kind__in=KINDS).update(creator_keeps_access=True)


class Migration(migrations.Migration):
    dependencies = [("inference", "0001_initial"), ("core", "0003_job_creator_keeps_access")]

    operations = [migrations.RunPython(mark_kept, migrations.RunPython.noop)]
