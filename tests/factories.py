"""factory_boy factories for the personas and objects every test suite uses."""

from __future__ import annotations

import factory
from allauth.account.models import EmailAddress

from apps.accounts.models import ApiToken, TokenScope, User
from apps.core.access import Role
from apps.organizations.models import Membership, Organization

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    handle = factory.Sequence(lambda n: f"user{n}")
    # Deterministic: a random Faker name can match a search term that a test uses.
    name = factory.Sequence(lambda n: f"Person {n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        """A verified primary e-mail unless ``verified=False``."""
        if create:
            self.save()
            EmailAddress.objects.create(user=self, email=self.email, primary=True, verified=extracted is not False)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


def make_token(user: User, *, scope: TokenScope = TokenScope.ADMIN, organization=None, **extra) -> str:
    """Create an API token for ``user`` and return the secret (as a client would hold it)."""
    raw, prefix, secret_hash = ApiToken.generate()
    ApiToken.objects.create(
        user=user, name="test", prefix=prefix, secret_hash=secret_hash, scope=scope, organization=organization, **extra
    )
    return raw
