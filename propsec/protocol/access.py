"""Who may call what (contract section 7), as a small set of rules that declarations name."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import Forbidden

ROLES = ("owner", "staff", "admin")


class Allow(Enum):
    ANYONE = "any authenticated user"
    OWNER = "owner of the property, staff, admin"
    SELF = "the user named in userId, staff, admin"
    STAFF = "staff, admin"
    ADMIN = "admin"

    @property
    def roles(self) -> tuple[str, ...]:
        """Roles that pass the gate before the payload is even read."""
        if self is Allow.STAFF:
            return STAFF_ROLES
        if self is Allow.ADMIN:
            return ("admin",)
        return ROLES


STAFF_ROLES = ("staff", "admin")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, fixed for the life of a connection."""

    id: str
    full_name: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def brief(self) -> dict:
        return {"id": self.id, "fullName": self.full_name, "role": self.role}


def check_role(rule: Allow, user: Principal) -> None:
    if user.role not in rule.roles:
        raise Forbidden(f"this query is for: {rule.value}")


def check_owner(rule: Allow, user: Principal, owner_id: str) -> None:
    """An owner may act only on their own property; staff and admins on any."""
    if rule is Allow.OWNER and not user.is_staff and owner_id != user.id:
        raise Forbidden("this property is not yours")


def check_self(rule: Allow, user: Principal, user_id: str) -> None:
    if rule is Allow.SELF and not user.is_staff and user_id != user.id:
        raise Forbidden("you may only ask about yourself")
