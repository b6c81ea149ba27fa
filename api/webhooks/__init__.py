"""Webhook and event triggers: signed deliveries stored durably, dispatched as Prefect events.

- :mod:`api.webhooks.signatures`: the signature schemes (constant-time compares).
- :mod:`api.webhooks.models`: webhook endpoints and their deliveries (Gorax database).
- :mod:`api.webhooks.service`: receive, verify, filter, store; history, replay, test, rotate.
- :mod:`api.webhooks.secrets_cache`, :mod:`api.webhooks.credential_stamps`: signing secrets
  cached per process, checked against the credential's change stamp as each delivery is stored.
- :mod:`api.webhooks.dispatcher`: emits ``gorax.webhook.received`` events in order, retrying
  while Prefect is unreachable (the delivery id is the event id, so a batch sent twice starts
  one run); a delivery whose event started no run is run directly from the deployment.
- :mod:`api.webhooks.automations`: one Prefect automation per webhook or event trigger,
  synced when a workflow is published (:func:`sync_triggers`).
"""
