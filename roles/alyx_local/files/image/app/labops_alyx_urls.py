"""alyx-local's URL configuration, plus `auth-token` at the root as cortex-lab/alyx (and so
IBL's ONE client) has it; alyx-local itself serves the same view at `api/auth-token`."""

from alyx.base.urls import urlpatterns as _alyx_urlpatterns
from django.urls import path
from rest_framework.authtoken.views import ObtainAuthToken

urlpatterns = [path("auth-token", ObtainAuthToken.as_view(), name="labops-auth-token")]
urlpatterns += _alyx_urlpatterns
