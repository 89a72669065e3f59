# AMS: the Native-AOT binary on a minimal runtime-deps base.
# Build: docker build -t ams .      Run: docker compose up (see README)

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# Native AOT links with clang and needs zlib's headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY global.json Directory.Build.props Ams.sln ./
COPY src/Ams/Ams.csproj src/Ams/
# The source generator the app references (src/Ams.Generators) is restored and built with it.
COPY src/Ams.Generators/Ams.Generators.csproj src/Ams.Generators/
RUN dotnet restore src/Ams/Ams.csproj -r linux-x64
COPY src/ src/
COPY wwwroot/ wwwroot/
# GET /openapi.json serves this file, embedded in the binary.
COPY docs/openapi.json docs/
# The same publish as `just publish`. GET /api/version reports AMS_COMMIT (the build context has
# no .git): docker build --build-arg AMS_COMMIT=$(git rev-parse HEAD) .
ARG AMS_COMMIT=unknown
RUN dotnet publish src/Ams -c Release -r linux-x64 --no-restore -o /app -p:AmsCommit=$AMS_COMMIT \
 && rm -f /app/*.dbg

FROM mcr.microsoft.com/dotnet/runtime-deps:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
# The port replaces the base image's ASPNETCORE_HTTP_PORTS=8080 (setting ASPNETCORE_URLS as well
# would make every start warn that one overrides the other). `Ams --healthcheck` probes the port
# configured here, or the first URL of ASPNETCORE_URLS if an operator sets that instead.
ENV ASPNETCORE_HTTP_PORTS=8082 \
    ASPNETCORE_ENVIRONMENT=Production
EXPOSE 8082
# The image's unprivileged user (uid 1654).
USER $APP_UID
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/app/Ams", "--healthcheck"]
ENTRYPOINT ["/app/Ams"]
