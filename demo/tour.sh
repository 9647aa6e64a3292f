#!/usr/bin/env bash
# The README's five-minute tour, as is. Start the demo first (`npm run demo`), then run
# `bash demo/tour.sh` from the project folder, or paste the commands one by one.
# BASE overrides the URL (spec/demo/demo-tour.spec.ts runs this file against a test server).
BASE=${BASE:-http://localhost:3000}

# Demo tokens (HS256, 1 h). Same as: npm run --silent demo:token -- alice
ALICE=$(node build/demo/mint-token.js alice)
BOB=$(node build/demo/mint-token.js bob)
CAROL=$(node build/demo/mint-token.js carol --tenant globex)

# 1. Each user sees only their tenant's documents (tenant from the token's tid claim).
curl -s $BASE/documents -H "Authorization: Bearer $ALICE"; echo
curl -s $BASE/documents -H "Authorization: Bearer $BOB"; echo

# 2. Writes land in the caller's tenant; the body never chooses the tenant.
curl -s -X POST $BASE/documents -H "Authorization: Bearer $ALICE" \
  -H 'Content-Type: application/json' -d '{"title":"Tour note","body":"written by alice"}'; echo
curl -s -X POST $BASE/documents -H "Authorization: Bearer $ALICE" \
  -H 'Content-Type: application/json' -d '{"title":"Sneaky","tenant_id":"globex"}'; echo

# 3. Another tenant's document answers exactly like a missing one: 404.
GLOBEX_DOC=$(curl -s $BASE/documents -H "Authorization: Bearer $BOB" | node -pe 'JSON.parse(require("fs").readFileSync(0)).documents[0].id')
curl -s $BASE/documents/$GLOBEX_DOC -H "Authorization: Bearer $ALICE"; echo
curl -s $BASE/documents/00000000-0000-4000-8000-000000000000 -H "Authorization: Bearer $ALICE"; echo

# 4. The path strategy: carol belongs to acme and globex; her token acts for globex.
curl -s $BASE/api/v1/globex/documents -H "Authorization: Bearer $CAROL"; echo

# 5. Refusals: token and header disagree, a suspended tenant, no sign-in.
curl -s $BASE/documents -H "Authorization: Bearer $ALICE" -H 'X-Tenant-ID: globex'; echo
curl -s $BASE/documents -H 'X-Tenant-ID: initech'; echo
curl -s $BASE/documents -H 'X-Tenant-ID: acme'; echo

# 6. Per-tenant settings (a @TenantScoped() controller).
curl -s $BASE/settings -H "Authorization: Bearer $BOB"; echo
