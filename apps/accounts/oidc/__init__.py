"""Sign-in through OpenID Connect providers (Okta, Entra ID, Google Workspace, Keycloak, Auth0...), hardened.

allauth's ``openid_connect`` provider, with the portal's class in its place (``SOCIALACCOUNT_PROVIDERS
["openid_connect"]["provider_class"]``): see provider.py for what it adds. config.py turns the operator's
``OIDC_PROVIDERS`` into allauth apps; it is imported by settings, so this package imports nothing here.
"""
