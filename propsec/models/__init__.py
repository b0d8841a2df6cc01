"""SQLAlchemy models, one module per subject."""
from .activity import (ACKNOWLEDGED, OPEN, RESOLVED, SEVERITIES, Alert, AuthEntry, Crime,
                       Visit)
from .audit import AuditEntry, AuditSeal
from .equipment import DRONE, CAMERA, EQUIPMENT_TYPES, Equipment, EquipmentType
from .events import EventRecord
from .notifications import (DONE, GAVE_UP, PENDING_WORK, LogCursor, MailMessage, Webhook,
                            WebhookAttempt, WebhookDelivery)
from .properties import (ACTIVE, ARMING_MODES, AWAY, DISARMED, HOME, PENDING, REMOVAL_REQUESTED, REMOVED, SETTABLE_STATUSES, STATUSES,
                         AllowedUser, Property, Tier)
from .users import ROLES, ApiToken, User, WebSession

TIERS = {1: "Basic", 2: "Standard", 3: "Premium"}

__all__ = [
    "ACKNOWLEDGED", "OPEN", "RESOLVED", "SEVERITIES", "Alert", "AuthEntry", "Crime", "Visit", "DRONE", "CAMERA", "EQUIPMENT_TYPES", "Equipment",
    "EquipmentType", "EventRecord", "ACTIVE", "ARMING_MODES", "AWAY", "DISARMED", "HOME", "PENDING", "REMOVAL_REQUESTED", "REMOVED",
    "SETTABLE_STATUSES", "STATUSES", "AllowedUser", "Property", "Tier", "ROLES", "ApiToken",
    "User", "TIERS", "DONE", "GAVE_UP", "PENDING_WORK", "LogCursor", "MailMessage", "Webhook",
    "WebhookAttempt", "WebhookDelivery", "AuditEntry", "AuditSeal", "WebSession",
]
