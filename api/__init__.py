"""Gorax API: tenants, users, roles, workflows, publish/deploy, runs, webhooks, human tasks."""
