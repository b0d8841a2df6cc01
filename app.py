"""propsec entry point: `flask --app app ...` for the CLI, `python app.py` to serve.

Run as a script, the chosen async library (PROPSEC_ASYNC_MODE, default eventlet) patches
the standard library before anything else is imported."""
import os

if __name__ == "__main__":
    _mode = os.environ.get("PROPSEC_ASYNC_MODE") or "eventlet"
    if _mode == "eventlet":
        import warnings

        # eventlet announces its maintenance mode on import; it is our default all the same
        # (the package filters the same notice for imports that do not come through here).
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        # Its resolver imports dnspython's DNSSEC algorithms, which newer cryptography
        # releases warn about (DSA); propsec never validates DNSSEC.
        warnings.filterwarnings("ignore", module=r"dns\.dnssecalgs\.")
        import eventlet

        eventlet.monkey_patch()
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
    elif _mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()

from propsec import create_app  # noqa: E402

app = create_app()

if __name__ == "__main__":
    from propsec.serve import main

    main(app)
