"""Domain handlers, one module per subject. Importing this package registers every query."""
from . import (accounts, alerts, allowed_users, audit, crimes, drones, entries, equipment, lifecycle,  # noqa: F401
               notifications, properties, session, users, visitors)
