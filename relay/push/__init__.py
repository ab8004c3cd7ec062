"""Web Push (RFC 8030, 8291, 8292): notices reach an archer's phone with the app closed.

- :mod:`.services`: which push services the relay may call (the SSRF guard).
- :mod:`.subscriptions`: a browser's subscription, validated, and its bounded store in Redis.
- :mod:`.keys`: the relay's VAPID key pair, shared by every instance through Redis.
- :mod:`.sender`: the task that encrypts and sends each notice to its subscribers.
- :mod:`.routes`: the HTTP API (the public key, subscribe, unsubscribe).
"""
