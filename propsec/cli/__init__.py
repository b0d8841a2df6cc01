"""The `flask --app app ...` commands of contract section 11."""
from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from sqlalchemy import delete, func, select

from ..database import init_db
from ..extensions import db
from ..models import ROLES, EventRecord, User
from ..models._common import utcnow
from ..security import hash_password, issue_token, revoke_tokens


PRUNE_BATCH = 10_000


def register_cli(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db_command():
        """Create or upgrade the schema and reference data (safe to repeat)."""
        init_db(app)
        click.echo("database ready")

    @app.cli.command("create-user")
    @click.argument("user_id")
    @click.option("--name", required=True, help="Full name")
    @click.option("--role", required=True, type=click.Choice(ROLES))
    @click.option("--password", help="Password for the web login (omit for token-only users)")
    @click.option("--email", help="E-mail address for notifications")
    def create_user_command(user_id, name, role, password, email):
        """Create a user, or update the name, role and password of an existing one."""
        if not 1 <= len(user_id) <= 64:
            raise click.BadParameter("must be 1 to 64 characters", param_hint="USER_ID")
        user = db.session.get(User, user_id) or User(id=user_id)
        created = user.created_at is None
        user.full_name, user.role = name, role
        if password:
            user.password_hash = hash_password(password)
        if email is not None:
            if email and ("@" not in email or len(email) > 320 or any(c.isspace() for c in email)):
                raise click.BadParameter("must be an e-mail address", param_hint="--email")
            user.email = email or None
        db.session.add(user)
        if created:
            from .. import audit

            db.session.flush()
            audit.record("user-created", actor=None, target=user_id, detail={"role": role})
        db.session.commit()
        click.echo(f"{'created' if created else 'updated'} {role} {user_id}")

    @app.cli.command("issue-token")
    @click.argument("user_id")
    def issue_token_command(user_id):
        """Issue an API token; it is printed once, as the last line."""
        if db.session.get(User, user_id) is None:
            raise click.ClickException(f"no user {user_id}")
        token = issue_token(user_id)
        click.echo(f"API token for {user_id} (shown once; store it safely):")
        click.echo(token)

    @app.cli.command("revoke-tokens")
    @click.argument("user_id")
    def revoke_tokens_command(user_id):
        """Revoke every API token of a user."""
        click.echo(f"revoked {revoke_tokens(user_id)} token(s) of {user_id}")

    @app.cli.command("prune-events")
    @click.option("--keep-days", default=30, show_default=True, type=click.IntRange(min=7),
                  help="Keep this many days of events (at least 7, as the contract promises)")
    def prune_events_command(keep_days):
        """Delete events older than --keep-days, a batch per transaction.

        Replay (`subscribe` with `since`) can only give back what is kept: a client away
        for longer gets the kept events after its `since` and nothing older."""
        cutoff = utcnow() - timedelta(days=keep_days)
        # The newest event always stays: on SQLite ids are rowids, and an emptied table would
        # hand out small ids again, below what clients pass as `since`.
        newest = db.session.scalar(select(func.max(EventRecord.id))) or 0
        deleted = 0
        while True:
            batch = (select(EventRecord.id)
                     .where(EventRecord.created_at < cutoff, EventRecord.id < newest)
                     .order_by(EventRecord.id).limit(PRUNE_BATCH))
            count = db.session.execute(delete(EventRecord).where(EventRecord.id.in_(batch))
                                       .execution_options(synchronize_session=False)).rowcount
            db.session.commit()  # short write transactions: live requests go on meanwhile
            deleted += count
            if count < PRUNE_BATCH:
                break
            click.echo(f"  deleted {deleted:,} so far", err=True)
        click.echo(f"deleted {deleted:,} event(s) older than {keep_days} days")

    @app.cli.command("verify-audit")
    def verify_audit_command():
        """Check the audit trail's hash chain; exit 1 naming the first broken entry."""
        from ..audit import seal

        seal.seal_all()  # entries committed but not sealed yet join the chain first
        ok, count, problem = seal.verify()
        if not ok:
            click.echo(f"audit trail broken after {count} good entries: {problem}", err=True)
            raise SystemExit(1)
        click.echo(f"ok {count} entries")

    @app.cli.command("rotate-secrets")
    def rotate_secrets_command():
        """Seal every stored secret (webhook signing secrets, two-factor secrets) again with
        the current PROPSEC_SECRET_KEY; run after a key change, with the old key in
        PROPSEC_SECRET_KEY_PREVIOUS. Exit 1 if some secret no known key opens."""
        from .rotate import rotate_secrets

        done, unreadable = rotate_secrets()
        for what, count in done.items():
            click.echo(f"{what}: {count} sealed with the current key")
        if unreadable:
            click.echo(f"{len(unreadable)} secret(s) no known key opens (wrong or missing "
                       f"PROPSEC_SECRET_KEY_PREVIOUS?): {', '.join(unreadable)}", err=True)
            raise SystemExit(1)

    @app.cli.command("seed-demo")
    @click.option("--properties", "count", default=60, show_default=True, type=click.IntRange(1))
    def seed_demo_command(count):
        """Fill the database with a demo site (users, properties, devices, history)."""
        from .seed import print_logins, seed_demo
        init_db(app)
        print_logins(seed_demo(count))

    from .simulate import simulate_command
    app.cli.add_command(simulate_command)
