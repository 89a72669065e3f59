# AMS tasks. `just run` serves the app; `just test` runs every test.
set shell := ["bash", "-euo", "pipefail", "-c"]

publish_dir := "artifacts/publish"

# List the recipes
default:
    @just --list

# Serve AMS on http://localhost:8082; starts MariaDB and Redis (data in .data/) unless ConnectionStrings__* are set
run:
    ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}" DEV_SERVICES_STOP_IS_SUCCESS=1 scripts/dev-services.sh dotnet run --project src/Ams -c Release

# Every test: unit and integration (real MariaDB and Redis), the source generator's snapshots, then the Native-AOT binary: API smoke and the chat in Chromium
# A failing project does not stop the others, so one run shows every failure.
test: build
    status=0; \
    dotnet test tests/Ams.Tests -c Release --no-build || status=1; \
    dotnet test tests/Ams.Generators.Tests -c Release --no-build || status=1; \
    just publish; \
    dotnet test tests/Ams.Smoke -c Release --no-build --filter "Category!=Cluster" || status=1; \
    dotnet test tests/Ams.Browser -c Release --no-build || status=1; \
    dotnet run --project tests/Ams.Bench -c Release --no-build -- --smoke || status=1; \
    exit $status

# The container, proven (tests/container/run): builds the real Dockerfile on local stand-ins of its base images, runs it against MariaDB and Redis, drives the API and the event stream through it, checks docker-compose.yml; installs docker.io and starts dockerd if needed (root)
container-test:
    tests/container/run

# AMS on the clustered engines (the Category=Cluster tests of tests/Ams.Smoke, on the AOT binary): Galera on 127.0.0.1-3, a Redis Cluster of six, HAProxy, and the fault drill; needs galera-4, rsync and haproxy
cluster-test: build publish
    dotnet test tests/Ams.Smoke -c Release --no-build --filter "Category=Cluster" --logger "console;verbosity=detailed"

# The clustered form on loopback, to try by hand until Ctrl-C (type `help` for kill/start commands): three Galera nodes, a Redis Cluster of six, three AMS nodes (AOT) behind HAProxy; needs galera-4, rsync, haproxy (README "Redis Cluster")
cluster: build publish
    # The app itself rather than `dotnet run`, whose own stop would cut the app's cleanup short
    dotnet tests/Ams.Cluster/bin/Release/net10.0/Ams.Cluster.dll

# The benchmarks (tests/Ams.Bench): AOT and JIT footprint, floor, send throughput, delivery across two nodes (AMS and Prosody at 200, 500, 1,000/s, next to the delivery floor with and without bare HTTP), 10,000 SSE connections, 50,000 on a node of their own (HTTP/1.1 connections, and HTTP/2 streams); writes docs/benchmarks.md. `just bench --cluster` adds floor, send and delivery on the loopback cluster (needs galera-4, rsync, haproxy)
[positional-arguments]
bench *args: build publish
    command -v prosody >/dev/null || [ "$(id -u)" -ne 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y prosody lua-dbi-mysql || true
    # Each of 50,000 streams holds a descriptor in the node and one in the harness: root raises the hard limit.
    { [ "$(id -u)" -ne 0 ] || ulimit -Hn 200000 2>/dev/null || true; } && ulimit -n "$(ulimit -Hn)" && dotnet run --project tests/Ams.Bench -c Release --no-build -- "$@"

# Build everything (warnings are errors)
build:
    dotnet build Ams.sln -c Release

# Native-AOT binary for linux-x64 in artifacts/publish; fails on any warning
publish:
    mkdir -p artifacts
    dotnet publish src/Ams -c Release -r linux-x64 -o {{publish_dir}} 2>&1 | tee artifacts/publish.log
    if grep -E "warning [A-Z]+[0-9]+" artifacts/publish.log; then echo "publish has warnings (see above)"; exit 1; fi
    ls -l {{publish_dir}}/Ams

# The README's screenshots (375 and 1280 px, light and dark) from the browser tests into docs/screenshots/
screenshots: build publish
    dotnet test tests/Ams.Browser -c Release --no-build --filter "FullyQualifiedName~ScreenshotTests"
    cp artifacts/screenshots/chat-1280-light.png artifacts/screenshots/chat-1280-dark.png artifacts/screenshots/chat-375-light.png artifacts/screenshots/chat-375-dark.png artifacts/screenshots/list-375-light.png artifacts/screenshots/list-375-dark.png docs/screenshots/

# Remove build output (keeps .data/)
clean:
    rm -rf artifacts src/*/bin src/*/obj tests/*/bin tests/*/obj

# Administration against the local setup: just admin list-users | create-user NAME < password-file | invite --uses 3 | … (README "Administration")
[positional-arguments]
admin *args:
    ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}" scripts/dev-services.sh dotnet run --project src/Ams -c Release --no-launch-profile -v q -- admin "$@"

# Re-wrap every data key under the first of Crypto__MasterKeys (uses the dev servers unless ConnectionStrings__* are set)
rotate-keys:
    ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}" scripts/dev-services.sh dotnet run --project src/Ams -c Release -- --rotate-keys

# Rewrite docs/openapi.json from the endpoints' metadata (OpenApiTests fails while the committed file differs from it)
openapi:
    AMS_OPENAPI_WRITE=1 dotnet test tests/Ams.Tests -c Release --filter "FullyQualifiedName~OpenApiTests.Committed_document_is_the_one_the_endpoints_generate"

# Fuzz every route for longer with a random seed (or replay one: just fuzz 20000 SEED); a failure prints its seed
fuzz iterations="20000" seed="random": build
    AMS_FUZZ_SEED={{seed}} AMS_FUZZ_ITER={{iterations}} dotnet test tests/Ams.Tests -c Release --no-build --filter "FullyQualifiedName~Ams.Tests.Fuzz" --logger "console;verbosity=detailed"

# Mutation testing (Stryker.NET) of the security-critical code, by area: crypto, twofactor, sessions, throttles, membership, or all; reports in artifacts/mutation/<area>/reports (docs/quality.md)
mutate area="all":
    dotnet tool restore
    for a in {{ if area == "all" { "crypto twofactor sessions throttles membership attachments" } else { area } }}; do \
        (cd src/Ams && dotnet stryker -f ../../stryker/$a.json --test-project ../../tests/Ams.Tests/Ams.Tests.csproj -O ../../artifacts/mutation/$a --skip-version-check); \
    done
