#!/usr/bin/env bash
# Attack: a local endpoint declared with the "anthropic" dialect whose server is an
# Ollama holding a cloud stub. Ollama forwards stubs on /v1/messages too,
# and says nothing of it in those replies (no remote_host): the survey
# (/api/tags, /api/show), the probe (over /api/chat, which does show
# remote_host) and ":local" names must apply to every local endpoint whose
# server answers /api/version like Ollama, whatever its dialect. The stub
# server plays the cloud: no canary may reach it.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

DIALECT=anthropic
ROUTE=/v1/messages
source "$ADV/lib_stub_route.sh"
