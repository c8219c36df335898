"""Routes of the KServe v2 / Open Inference Protocol (names in the ``kserve`` namespace), at the root of the site:
clients call ``http://host/v2/...``. See apps/inference/api/kserve.py and docs/api/kserve.md.

/v2                                                        server-metadata         GET
/v2/health/live                                            health-live             GET
/v2/health/ready                                           health-ready            GET
/v2/models/{model_name}                                    model-metadata          GET
/v2/models/{model_name}/versions/{model_version}           model-version-metadata  GET
/v2/models/{model_name}/ready                              model-ready             GET
/v2/models/{model_name}/versions/{model_version}/ready     model-version-ready     GET
/v2/models/{model_name}/infer                              model-infer             POST
/v2/models/{model_name}/versions/{model_version}/infer     model-version-infer     POST
/v2/{anything else}                                        unsupported             GET, POST (404 in JSON)
"""

from __future__ import annotations

from django.urls import path, re_path

from apps.inference.api import kserve

app_name = "kserve"

MODEL = "v2/models/<str:model_name>"
VERSION = "v2/models/<str:model_name>/versions/<str:model_version>"

urlpatterns = [
    path("v2", kserve.ServerMetadataView.as_view(), name="server-metadata"),
    path("v2/health/live", kserve.LiveView.as_view(), name="health-live"),
    path("v2/health/ready", kserve.ReadyView.as_view(), name="health-ready"),
    path(MODEL, kserve.ModelMetadataView.as_view(), name="model-metadata"),
    path(VERSION, kserve.ModelMetadataView.as_view(), name="model-version-metadata"),
    path(f"{MODEL}/ready", kserve.ModelReadyView.as_view(), name="model-ready"),
    path(f"{VERSION}/ready", kserve.ModelReadyView.as_view(), name="model-version-ready"),
    path(f"{MODEL}/infer", kserve.ModelInferView.as_view(), name="model-infer"),
    path(f"{VERSION}/infer", kserve.ModelInferView.as_view(), name="model-version-infer"),
    re_path(r"^v2/(?P<rest>.*)$", kserve.UnsupportedView.as_view(), name="unsupported"),
]
