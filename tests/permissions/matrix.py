"""The permission matrix: every API route and page, and what each persona must get, from DESIGN.md's role table.

The expected answers are written here from the design (docs/dev/testing.md, "The permission matrix"), never
read back from the code:

    viewer  views everything the org owns
    member  + creates and changes the org's objects, runs models
    admin   + deletes objects, manages teams, invites and removes members up to admin, sees the audit trail
              and the org's tokens
    owner   + manages owners and org settings, deletes the org; the last owner cannot leave or be demoted

    An object the caller may not view answers 404; one the caller may view but not act on answers 403.

Decisions taken where the design is silent (documented in docs/dev/testing.md):

* anonymous callers of the API: a request that needs sign-in (any write, anything about "me") answers 401 with
  ``WWW-Authenticate: Bearer``; a read of something private answers 404 (not visible) or 401 (sign in first):
  both reveal nothing, so either is accepted;
* a public organization shows itself, its members and its teams to anyone, like the org; its admin-only
  collections (invitations, audit trail, tokens) stay refused: 403 to a signed-in outsider, 401/403 to anonymous;
* "OK" means any 2xx: the matrix checks who may, the behaviour tests check what exactly comes back.

Pages: anonymous is sent to the login page (302); otherwise pages answer as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.files.base import ContentFile
from django.utils import timezone

from apps.accounts.models import ApiToken, TokenScope
from apps.accounts.services import create_api_token
from apps.core.access import Role, Visibility
from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus
from apps.organizations import services as org_services
from apps.organizations.models import Invitation, Organization, Team
from tests.factories import MembershipFactory, UserFactory

PERSONAS = ("owner", "admin", "member", "viewer", "outsider", "anonymous")

OK = "2xx"
LOGIN = "login"  # pages: a redirect to the login page
HIDDEN_FROM_ANONYMOUS = frozenset({401, 404})  # private things: "sign in" or "no such thing", both reveal nothing
REFUSED_TO_ANONYMOUS = frozenset({401, 403})  # visible things that need a role: "sign in" or "forbidden"

Expected = str | int | frozenset


def table(
    owner: Expected, admin: Expected, member: Expected, viewer: Expected, outsider: Expected, anonymous: Expected
) -> dict[str, Expected]:
    """One row of expectations, persona by persona, in the order of DESIGN.md's personas."""
    return {
        "owner": owner,
        "admin": admin,
        "member": member,
        "viewer": viewer,
        "outsider": outsider,
        "anonymous": anonymous,
    }


@dataclass(frozen=True)
class Access:
    """Who may do one thing, with the organization private and with it public."""

    private: dict[str, Expected]
    public: dict[str, Expected]


# --- the role table, as access patterns -------------------------------------------------------------------------
#                       owner admin member viewer  outsider  anonymous
ORG_READ = Access(  # viewer + : view everything the org owns
    private=table(OK, OK, OK, OK, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, OK, OK, OK, OK),
)
MEMBER_WRITE = Access(  # member + : create and change the org's objects (the models' routes, from later issues)
    private=table(OK, OK, OK, 403, 404, 401),
    public=table(OK, OK, OK, 403, 403, 401),
)
ADMIN_WRITE = Access(  # admin + : delete objects, manage teams, invite and remove members
    private=table(OK, OK, 403, 403, 404, 401),
    public=table(OK, OK, 403, 403, 403, 401),
)
ADMIN_READ = Access(  # admin + : see the audit trail, the invitations and the org's tokens
    private=table(OK, OK, 403, 403, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, 403, 403, 403, REFUSED_TO_ANONYMOUS),
)
# One admin-only object (an invitation, a bound token) asked for by a member or viewer: restrict() does not let
# them view it, so 404; a view that checks the role first answers 403. Both tell nothing they may not know.
HIDDEN_OR_REFUSED = frozenset({403, 404})
ADMIN_OBJECT_READ = Access(
    private=table(OK, OK, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, frozenset({401, 403, 404})),
)
ADMIN_OBJECT_WRITE = Access(
    private=table(OK, OK, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, 404, 401),
    public=table(OK, OK, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, 401),
)
OWNER_WRITE = Access(  # owner + : org settings, delete the org
    private=table(OK, 403, 403, 403, 404, 401),
    public=table(OK, 403, 403, 403, 403, 401),
)
ANY_MEMBER_SELF = Access(  # a member acting on their own membership (leave); the last owner cannot leave: 400
    private=table(400, OK, OK, OK, 404, 401),
    public=table(400, OK, OK, OK, frozenset({400, 403, 404}), 401),
)
SIGNED_IN_SELF = Access(  # about the caller themself (profile, own tokens, create an org, accept an invitation)
    private=table(OK, OK, OK, OK, OK, 401),
    public=table(OK, OK, OK, OK, OK, 401),
)
LISTED_TO_VIEWERS = Access(  # an object of the org in a list: members see it; anyone else only when the org is public
    private=table(True, True, True, True, False, False),
    public=table(True, True, True, True, True, True),
)
LISTED_TO_ADMINS = Access(
    private=table(True, True, False, False, False, False),
    public=table(True, True, False, False, False, False),
)
PUBLIC_LISTING = Access(  # lists filtered by restrict(): anyone may ask, each sees what they may view
    private=table(OK, OK, OK, OK, OK, OK),
    public=table(OK, OK, OK, OK, OK, OK),
)


class Scene:
    """The ``world`` (org ``acme`` with a user per role, an outsider) plus the objects routes act on.

    Objects are made on first use, through the same services the API calls, so each test builds only what its
    route needs; a test's scene is fresh (function-scoped world): destructive requests never share objects.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.org: Organization = world.org
        self._own_tokens: dict[str, ApiToken] = {}
        self._made: dict[str, Any] = {}

    def once(self, name: str, build: Callable[[Scene], Any]) -> Any:
        """An object of the scene made on first use, for the matrix entries of other apps (see the end of this
        module): ``scene.once("model", lambda s: Model.objects.create(organization=s.org, ...))``."""
        if name not in self._made:
            self._made[name] = build(self)
        return self._made[name]

    def user(self, persona: str):
        return self.world.user(persona)

    @property
    def owner(self):
        return self.user("owner")

    def make_public(self) -> None:
        Organization.objects.filter(pk=self.org.pk).update(visibility=Visibility.PUBLIC)
        self.org.refresh_from_db()

    @cached_property
    def target(self):
        """A viewer of acme who is none of the personas: the member that role changes and removals act on."""
        user = UserFactory(handle="target-user", email="target@acme.example")
        MembershipFactory(organization=self.org, user=user, role=Role.VIEWER)
        return user

    @cached_property
    def team(self) -> Team:
        """Team ``core`` of acme, with the target user in it."""
        team = org_services.create_team(actor=self.owner, organization=self.org, slug="core", name="Core")
        org_services.add_team_member(actor=self.owner, team=team, user=self.target)
        return team

    @cached_property
    def invitation(self) -> Invitation:
        """A pending invitation of acme to someone not yet in it."""
        return org_services.create_invitation(
            actor=self.owner, organization=self.org, email="invitee@elsewhere.example", role=Role.MEMBER
        )

    @cached_property
    def bound_token(self) -> ApiToken:
        """A token of the target user bound to acme: acme's admins see and revoke it."""
        token, _raw = create_api_token(user=self.target, name="ci", scope=TokenScope.READ, organization=self.org)
        return token

    def own_token(self, persona: str) -> ApiToken:
        """A token of the persona's own (named after them), to list, read and revoke through /user/tokens/."""
        if persona not in self._own_tokens:
            name = f"laptop-of-{persona}"
            token, _raw = create_api_token(user=self.user(persona), name=name, scope=TokenScope.READ)
            token.name_marker = name
            self._own_tokens[persona] = token
        return self._own_tokens[persona]

    @cached_property
    def audited_action(self) -> str:
        """An action in acme's audit trail (creating the team writes ``team.created``)."""
        assert self.team
        return "team.created"

    @cached_property
    def globex(self) -> Organization:
        """Another private organization the personas do not belong to; it invites them."""
        founder = UserFactory(handle="globex-founder", email="founder@globex.example")
        return org_services.create_organization(creator=founder, slug="globex", name="Globex")

    def accept_key(self, persona: str) -> str:
        """The key of an invitation to globex addressed to the persona's own (verified) e-mail."""
        user = self.user(persona) or self.user("outsider")  # anonymous holds someone's link, not their account
        invitation = org_services.create_invitation(
            actor=self.globex.memberships.get().user, organization=self.globex, email=user.email, role=Role.MEMBER
        )
        return invitation.key

    @cached_property
    def job(self) -> Job:
        """An audit export of acme started by its admin, finished, with its file."""
        job = start_job(kind="audit.export", organization=self.org, creator=self.user("admin"), params={})
        job.status = JobStatus.SUCCEEDED
        job.finished_at = timezone.now()
        job.result = {"content_type": "text/csv", "rows": 0}
        job.result_file.save("acme-audit.csv", ContentFile(b"seq,action\n"), save=False)
        job.save()
        return job

    @cached_property
    def queued_job(self) -> Job:
        """An audit export of acme started by its admin, not yet taken by a worker (one to cancel)."""
        return start_job(kind="audit.export", organization=self.org, creator=self.user("admin"), params={})


Builder = Callable[[Scene, str], dict]


def acme(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug}


@dataclass(frozen=True)
class Route:
    """One (URL name, method) of the API or a page, with what each persona must get."""

    name: str
    method: str
    access: Access
    kwargs: Builder = acme
    body: Builder | None = None
    query: dict = field(default_factory=dict)
    under_org: bool = True  # the route lives under /orgs/{org_slug}/ (so the public-org slice applies)
    of_acme: bool = False  # not under_org, yet it acts on an object of acme (the token-binding tests run it)
    lists: Callable[[Scene], str] | None = None  # a list route: the item that must (or must not) be in it
    listed: Access | None = None  # who finds that item in the list (True) or must not (False)
    unchanged_for: frozenset[str] = frozenset()  # pages: personas refused with a message (no change, no event)
    audited: bool = True  # False: an allowed write that by design writes no audit event (say why in ``note``)
    note: str = ""

    @property
    def id(self) -> str:
        query = "".join(f"-{value}" for value in self.query.values())
        return f"{self.name.removeprefix('api:')}-{self.method}{query}"

    @property
    def writes(self) -> bool:
        return self.method not in {"GET", "HEAD", "OPTIONS"}


def no_kwargs(scene: Scene, persona: str) -> dict:
    return {}


def own_token(scene: Scene, persona: str) -> dict:
    # Anonymous holds no token: it asks for the member's, which must not be shown to it either.
    return {"uuid": scene.own_token("member" if persona == "anonymous" else persona).uuid}


def bound_token(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "uuid": scene.bound_token.uuid}


def target_member(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "handle": scene.target.handle}


def team(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "team_slug": scene.team.slug}


def team_member(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "team_slug": scene.team.slug, "handle": scene.target.handle}


def invitation(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "uuid": scene.invitation.uuid}


def job(scene: Scene, persona: str) -> dict:
    return {"uuid": scene.job.uuid}


def queued_job(scene: Scene, persona: str) -> dict:
    return {"uuid": scene.queued_job.uuid}


# A job: visible to its creator (acme's admin here) and acme's admins and owners, nobody else.
JOB_VIEW = Access(
    private=table(OK, OK, 404, 404, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, 404, 404, 404, HIDDEN_FROM_ANONYMOUS),
)
# Cancelling a job: the same people as may see it (its creator, acme's admin here, and acme's admins and owners);
# a write, so anonymous is asked to sign in.
JOB_CANCEL = Access(
    private=table(OK, OK, 404, 404, 404, 401),
    public=table(OK, OK, 404, 404, 404, 401),
)
# Starting an audit export: admins (the audit trail is theirs). The organization is named in the body, so one the
# caller cannot see is a 400 on the field "organization" (not a 404 of the URL).
JOB_START = Access(
    private=table(OK, OK, 403, 403, 400, 401),
    public=table(OK, OK, 403, 403, 403, 401),
)
# Lists anyone may ask for, each caller seeing what restrict() lets them: anonymous may also be told to sign in.
OWN_LISTING = Access(
    private=table(OK, OK, OK, OK, OK, frozenset({200, 401})),
    public=table(OK, OK, OK, OK, OK, frozenset({200, 401})),
)


# --- the API (docs/api/*.md; URL names in the "api" namespace) ---------------------------------------------------
API_ROUTES: list[Route] = [
    # the caller themself: any signed-in user, about themself only
    Route("api:user-detail", "GET", SIGNED_IN_SELF, no_kwargs, under_org=False),
    Route("api:user-detail", "PATCH", SIGNED_IN_SELF, no_kwargs, lambda s, p: {"name": "Renamed"}, under_org=False),
    Route(
        "api:user-token-list",
        "GET",
        SIGNED_IN_SELF,
        no_kwargs,
        under_org=False,
        lists=lambda s: s.own_token("member").name_marker,
        listed=Access(private=table(False, False, True, False, False, False), public=table(*[False] * 6)),
        note="each caller lists their own tokens only: the member's token is in the member's list alone",
    ),
    Route(
        "api:user-token-list",
        "POST",
        SIGNED_IN_SELF,
        no_kwargs,
        lambda s, p: {"name": "laptop", "scope": "read"},
        under_org=False,
    ),
    Route("api:user-token-detail", "GET", SIGNED_IN_SELF, own_token, under_org=False),
    Route("api:user-token-detail", "DELETE", SIGNED_IN_SELF, own_token, under_org=False),
    # organizations: anyone signed in creates one; owners change settings and delete
    Route(
        "api:org-list",
        "GET",
        PUBLIC_LISTING,
        no_kwargs,
        under_org=False,
        lists=lambda s: s.org.slug,
        listed=LISTED_TO_VIEWERS,
    ),
    Route(
        "api:org-list",
        "POST",
        SIGNED_IN_SELF,
        no_kwargs,
        lambda s, p: {"slug": f"new-{p}", "name": f"New org of {p}"},
        under_org=False,
    ),
    Route("api:org-detail", "GET", ORG_READ),
    Route("api:org-detail", "PATCH", OWNER_WRITE, body=lambda s, p: {"description": "Changed"}),
    Route("api:org-detail", "DELETE", OWNER_WRITE),
    Route("api:org-leave", "POST", ANY_MEMBER_SELF, note="the only owner of acme cannot leave it: 400"),
    # members: viewers see them; admins change roles and remove (up to admin)
    Route("api:org-member-list", "GET", ORG_READ, lists=lambda s: s.target.handle, listed=LISTED_TO_VIEWERS),
    Route("api:org-member-detail", "GET", ORG_READ, target_member),
    Route("api:org-member-detail", "PATCH", ADMIN_WRITE, target_member, lambda s, p: {"role": "member"}),
    Route("api:org-member-detail", "DELETE", ADMIN_WRITE, target_member),
    # teams: viewers see them; admins manage them
    Route("api:org-team-list", "GET", ORG_READ, lists=lambda s: s.team.slug, listed=LISTED_TO_VIEWERS),
    Route("api:org-team-list", "POST", ADMIN_WRITE, body=lambda s, p: {"slug": "ops", "name": "Ops"}),
    Route("api:org-team-detail", "GET", ORG_READ, team),
    Route("api:org-team-detail", "PATCH", ADMIN_WRITE, team, lambda s, p: {"name": "Core team"}),
    Route("api:org-team-detail", "DELETE", ADMIN_WRITE, team),
    Route("api:org-team-member-list", "GET", ORG_READ, team, lists=lambda s: s.target.handle, listed=LISTED_TO_VIEWERS),
    Route("api:org-team-member-list", "POST", ADMIN_WRITE, team, lambda s, p: {"handle": "viewer-user"}),
    Route("api:org-team-member-detail", "DELETE", ADMIN_WRITE, team_member),
    # invitations: admins only, the list included
    Route("api:org-invitation-list", "GET", ADMIN_READ, lists=lambda s: s.invitation.email, listed=LISTED_TO_ADMINS),
    Route(
        "api:org-invitation-list",
        "POST",
        ADMIN_WRITE,
        body=lambda s, p: {"email": "newcomer@elsewhere.example", "role": "member"},
    ),
    Route("api:org-invitation-detail", "GET", ADMIN_OBJECT_READ, invitation),
    Route("api:org-invitation-detail", "DELETE", ADMIN_OBJECT_WRITE, invitation),
    # accepting: whoever holds the key and has the invited address, verified (the invitation is to globex)
    Route(
        "api:invitation-accept",
        "POST",
        SIGNED_IN_SELF,
        no_kwargs,
        lambda s, p: {"key": s.accept_key(p)},
        under_org=False,
    ),
    # the tokens bound to an organization: its admins only
    Route("api:org-token-list", "GET", ADMIN_READ, lists=lambda s: str(s.bound_token.uuid), listed=LISTED_TO_ADMINS),
    Route("api:org-token-detail", "GET", ADMIN_OBJECT_READ, bound_token),
    Route("api:org-token-detail", "DELETE", ADMIN_OBJECT_WRITE, bound_token),
    # the audit trail: admins only
    Route("api:org-audit-list", "GET", ADMIN_READ, lists=lambda s: s.audited_action, listed=LISTED_TO_ADMINS),
    Route("api:org-audit-export", "GET", ADMIN_READ, query={"format": "csv"}),
    Route("api:org-audit-export", "GET", ADMIN_READ, query={"format": "jsonl"}),
    # jobs: the creator and the org's admins see one; starting an audit export is for admins
    Route(
        "api:job-list",
        "GET",
        OWN_LISTING,
        no_kwargs,
        under_org=False,
        lists=lambda s: str(s.job.uuid),
        listed=LISTED_TO_ADMINS,
        note="the job was started by acme's admin: its creator and acme's owner see it",
    ),
    Route(
        "api:job-list",
        "POST",
        JOB_START,
        no_kwargs,
        lambda s, p: {"kind": "audit.export", "organization": s.org.slug, "params": {"format": "csv"}},
    ),
    Route("api:job-detail", "GET", JOB_VIEW, job),
    Route("api:job-download", "GET", JOB_VIEW, job),
    Route("api:job-cancel", "POST", JOB_CANCEL, queued_job),
]


# --- pages (server-rendered; a signed-in session, Django's test client with force_login) ----------------------------
# DONE: a page answered (2xx) or an action done and redirected (3xx, not to the login page). Forms post form data.
DONE = "done"
PAGE_ORG_READ = Access(
    private=table(DONE, DONE, DONE, DONE, 404, LOGIN),
    # Decision (docs/dev/testing.md): a public organization's pages show it, its members and teams to anyone;
    # anonymous visitors may be asked to sign in first on all but the overview.
    public=table(DONE, DONE, DONE, DONE, DONE, frozenset({DONE, LOGIN})),
)
PAGE_ORG_OVERVIEW = Access(
    private=table(DONE, DONE, DONE, DONE, 404, LOGIN),
    public=table(DONE, DONE, DONE, DONE, DONE, DONE),
)
PAGE_ADMIN = Access(  # admin-only pages and actions: invitations, tokens, audit trail, teams and members changes
    private=table(DONE, DONE, 403, 403, 404, LOGIN),
    public=table(DONE, DONE, 403, 403, 403, LOGIN),
)
PAGE_ADMIN_OBJECT = Access(  # an admin-only object's action (revoke an invitation, a token): see ADMIN_OBJECT_*
    private=table(DONE, DONE, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, 404, LOGIN),
    public=table(DONE, DONE, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, HIDDEN_OR_REFUSED, LOGIN),
)
PAGE_OWNER = Access(  # org settings, deleting the org
    private=table(DONE, 403, 403, 403, 404, LOGIN),
    public=table(DONE, 403, 403, 403, 403, LOGIN),
)
PAGE_MEMBER_SELF = Access(  # leaving: the last owner is refused with a message on the page it returns to
    private=table(DONE, DONE, DONE, DONE, 404, LOGIN),
    public=table(DONE, DONE, DONE, DONE, frozenset({403, 404, DONE}), LOGIN),
)
PAGE_SIGNED_IN = Access(  # the caller's own pages
    private=table(DONE, DONE, DONE, DONE, DONE, LOGIN),
    public=table(DONE, DONE, DONE, DONE, DONE, LOGIN),
)
PAGE_ANYONE = Access(private=table(*[DONE] * 6), public=table(*[DONE] * 6))
PAGE_JOB = Access(  # the job's creator (acme's admin) and acme's admins and owners
    private=table(DONE, DONE, 404, 404, 404, LOGIN),
    public=table(DONE, DONE, 404, 404, 404, LOGIN),
)


def own_token_page(scene: Scene, persona: str) -> dict:
    return {"uuid": scene.own_token("member" if persona == "anonymous" else persona).uuid}


def accept_key(scene: Scene, persona: str) -> dict:
    return {"key": scene.accept_key(persona)}


def acme_settings(scene: Scene, persona: str) -> dict:
    return {"slug": scene.org.slug, "name": "Acme Inc", "description": "Changed", "visibility": scene.org.visibility}


PAGE_ROUTES: list[Route] = [
    Route("home", "GET", PAGE_ANYONE, no_kwargs, under_org=False),
    # the caller's own pages
    Route("account-profile", "GET", PAGE_SIGNED_IN, no_kwargs, under_org=False),
    Route(
        "account-profile",
        "POST",
        PAGE_SIGNED_IN,
        no_kwargs,
        lambda s, p: {"name": "Renamed", "handle": s.user(p).handle if s.user(p) else "nobody"},
        under_org=False,
    ),
    Route("account-tokens", "GET", PAGE_SIGNED_IN, no_kwargs, under_org=False),
    Route(
        "account-tokens",
        "POST",
        PAGE_SIGNED_IN,
        no_kwargs,
        lambda s, p: {"name": "laptop", "scope": 10},
        under_org=False,
    ),
    Route("account-token-revoke", "POST", PAGE_SIGNED_IN, own_token_page, under_org=False),
    # Anyone may ask for the verification link again; the answer never says whether the address has an account.
    Route(
        "account-verification-resend",
        "POST",
        PAGE_ANYONE,
        no_kwargs,
        lambda s, p: {"email": f"{p}@new.example"},
        under_org=False,
        unchanged_for=frozenset(PERSONAS),
        note="sends a mail at most, writes no audit event",
    ),
    Route("org-create", "GET", PAGE_SIGNED_IN, no_kwargs, under_org=False),
    Route(
        "org-create",
        "POST",
        PAGE_SIGNED_IN,
        no_kwargs,
        lambda s, p: {"slug": f"new-{p}", "name": "New", "visibility": "private"},
        under_org=False,
    ),
    # The key is the proof: signed out, the page says what the invitation is and offers sign-in and sign-up.
    Route("invitation-accept", "GET", PAGE_ANYONE, accept_key, under_org=False),
    Route("invitation-accept", "POST", PAGE_SIGNED_IN, accept_key, under_org=False),
    # the organization's pages
    Route("org-overview", "GET", PAGE_ORG_OVERVIEW),
    Route("org-settings", "GET", PAGE_OWNER),
    Route("org-settings", "POST", PAGE_OWNER, body=acme_settings),
    Route("org-delete", "POST", PAGE_OWNER, body=lambda s, p: {"confirm_slug": s.org.slug}),
    Route(
        "org-leave",
        "POST",
        PAGE_MEMBER_SELF,
        unchanged_for=frozenset({"owner", "outsider"}),
        note="the last owner stays, an outsider of a public org has nothing to leave: a message says so",
    ),
    Route("org-members", "GET", PAGE_ORG_READ),
    Route("org-member-role", "POST", PAGE_ADMIN, target_member, lambda s, p: {"role": int(Role.MEMBER)}),
    Route("org-member-remove", "POST", PAGE_ADMIN, target_member),
    Route("org-teams", "GET", PAGE_ORG_READ),
    Route("org-teams", "POST", PAGE_ADMIN, body=lambda s, p: {"slug": "ops", "name": "Ops"}),
    Route("org-team", "GET", PAGE_ORG_READ, team),
    Route("org-team", "POST", PAGE_ADMIN, team, lambda s, p: {"slug": "core", "name": "Core team"}),
    Route("org-team-delete", "POST", PAGE_ADMIN, team),
    Route("org-team-member-add", "POST", PAGE_ADMIN, team, lambda s, p: {"handle": "viewer-user"}),
    Route("org-team-member-remove", "POST", PAGE_ADMIN, team_member),
    Route("org-invitations", "GET", PAGE_ADMIN),
    Route(
        "org-invitations",
        "POST",
        PAGE_ADMIN,
        body=lambda s, p: {"email": "newcomer@elsewhere.example", "role": int(Role.MEMBER)},
    ),
    Route("org-invitation-revoke", "POST", PAGE_ADMIN_OBJECT, invitation),
    Route("org-tokens", "GET", PAGE_ADMIN),
    Route("org-token-revoke", "POST", PAGE_ADMIN_OBJECT, bound_token),
    Route("org-audit", "GET", PAGE_ADMIN),
    Route("org-audit-export", "POST", PAGE_ADMIN, body=lambda s, p: {"format": "csv"}),
    Route("org-jobs", "GET", PAGE_ORG_READ),
    Route("job-detail", "GET", PAGE_JOB, job, under_org=False),
    Route("job-progress", "GET", PAGE_JOB, job, under_org=False),
    Route("job-cancel", "POST", PAGE_JOB, queued_job, under_org=False),
]


# --- routes that are in no matrix, each with its reason ------------------------------------------------------------
# Keys: a URL name ("api-docs"), a namespace ("admin:"), or a module prefix of the view ("allauth.").
EXEMPT: dict[str, str] = {
    "admin:": "Django admin: staff only, guarded by Django's own admin_view (tests/core for its pages)",
    "allauth.": "django-allauth's own account pages (sign-up, login, e-mail, password, MFA): tests/accounts",
    "account_signup": "allauth's sign-up page (apps.accounts.views.SignupView adds the handle race's form error): "
    "public by design, tests/accounts",
    "api-schema": "the OpenAPI schema: public by design (tests/test_openapi_schema.py)",
    "api-docs": "Swagger UI: public by design, served offline (tests/test_openapi_schema.py)",
    "api-redoc": "Redoc: public by design, served offline (tests/test_openapi_schema.py)",
    "healthz": "liveness probe for load balancers: public by design, shows nothing",
    "metrics": "Prometheus' scrape endpoint: no session or role, a bearer token or network rule decides "
    "(tests/core/test_metrics_endpoint_is_only_for_the_operators_prometheus.py)",
    "favicon": "a redirect to the portal's static icon: public by design, shows nothing "
    "(tests/pages/test_error_pages_are_the_portals_own.py)",
}


# --- entries of other apps ----------------------------------------------------------------------------------------
# An app adds its routes in ``tests/<app>/permission_matrix.py``, which may define API_ROUTES, PAGE_ROUTES (lists of
# Route, built from the access patterns above and ``Scene.once``) and EXEMPT (URL name -> reason). They join the
# matrix, so the meta-test counts them as covered and the matrix tests run them like the routes above.
def _load_app_entries() -> None:
    import importlib
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent.parent
    for path in sorted(tests_dir.glob("*/permission_matrix.py")):
        module = importlib.import_module(f"tests.{path.parent.name}.permission_matrix")
        API_ROUTES.extend(getattr(module, "API_ROUTES", []))
        PAGE_ROUTES.extend(getattr(module, "PAGE_ROUTES", []))
        EXEMPT.update(getattr(module, "EXEMPT", {}))


_load_app_entries()
