// Command daprd runs the Dapr sidecar runtime with a fixed, small set of
// components: Redis Streams and in-memory pub/sub, Redis and in-memory state.
//
// Dapr's own cmd/daprd links every component in components-contrib (hundreds of
// cloud SDKs), which takes a long time to compile on small machines. The runtime
// itself is a library, so this entry point wires it up the same way with only
// the registrations we need. Anything not registered here (for example the mDNS
// name resolver, which would multicast on the local network) is simply absent:
// daprd logs that it is unavailable and carries on.
package main

import (
	"context"
	"fmt"
	"os"

	inmemorypubsub "github.com/dapr/components-contrib/pubsub/in-memory"
	redispubsub "github.com/dapr/components-contrib/pubsub/redis"
	inmemorystate "github.com/dapr/components-contrib/state/in-memory"
	redisstate "github.com/dapr/components-contrib/state/redis"
	"go.opencensus.io/stats/view"

	"github.com/dapr/dapr/cmd/daprd/options"
	"github.com/dapr/dapr/pkg/buildinfo"
	bindingsloader "github.com/dapr/dapr/pkg/components/bindings"
	configurationloader "github.com/dapr/dapr/pkg/components/configuration"
	conversationloader "github.com/dapr/dapr/pkg/components/conversation"
	cryptoloader "github.com/dapr/dapr/pkg/components/crypto"
	lockloader "github.com/dapr/dapr/pkg/components/lock"
	httpmiddlewareloader "github.com/dapr/dapr/pkg/components/middleware/http"
	nrloader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubloader "github.com/dapr/dapr/pkg/components/pubsub"
	secretstoresloader "github.com/dapr/dapr/pkg/components/secretstores"
	stateloader "github.com/dapr/dapr/pkg/components/state"
	"github.com/dapr/dapr/pkg/healthz"
	"github.com/dapr/dapr/pkg/metrics"
	"github.com/dapr/dapr/pkg/modes"
	"github.com/dapr/dapr/pkg/runtime"
	"github.com/dapr/dapr/pkg/runtime/registry"
	"github.com/dapr/dapr/pkg/security"
	"github.com/dapr/kit/concurrency"
	"github.com/dapr/kit/logger"
	"github.com/dapr/kit/signals"
)

var (
	log        = logger.NewLogger("dapr.runtime")
	logContrib = logger.NewLogger("dapr.contrib")
)

func registerComponents() {
	pubsubloader.DefaultRegistry.RegisterComponent(redispubsub.NewRedisStreams, "redis")
	pubsubloader.DefaultRegistry.RegisterComponent(inmemorypubsub.New, "in-memory")
	stateloader.DefaultRegistry.RegisterComponent(redisstate.NewRedisStateStore, "redis")
	stateloader.DefaultRegistry.RegisterComponent(inmemorystate.NewInMemoryStateStore, "in-memory")
}

func main() {
	opts, err := options.New(os.Args[1:])
	if err != nil {
		log.Fatalf("Failed to parse flags: %v", err)
	}
	if opts.RuntimeVersion {
		fmt.Println(buildinfo.Version())
		return
	}
	if opts.BuildInfo {
		fmt.Printf("Version: %s\nGit Commit: %s\nGit Version: %s\nComponents: pubsub.redis pubsub.in-memory state.redis state.in-memory\n",
			buildinfo.Version(), buildinfo.Commit(), buildinfo.GitVersion())
		return
	}
	if opts.WaitCommand {
		runtime.WaitUntilDaprOutboundReady(opts.DaprHTTPPort)
		return
	}

	opts.Logger.SetAppID(opts.AppID)
	if err := logger.ApplyOptionsToLoggers(&opts.Logger); err != nil {
		log.Fatal(err)
	}
	log.Infof("Starting Dapr Runtime (trimmed build) -- version %s", buildinfo.Version())

	registerComponents()
	pubsubloader.DefaultRegistry.Logger = logContrib
	stateloader.DefaultRegistry.Logger = logContrib
	secretstoresloader.DefaultRegistry.Logger = logContrib
	configurationloader.DefaultRegistry.Logger = logContrib
	lockloader.DefaultRegistry.Logger = logContrib
	nrloader.DefaultRegistry.Logger = logContrib
	bindingsloader.DefaultRegistry.Logger = logContrib
	cryptoloader.DefaultRegistry.Logger = logContrib
	conversationloader.DefaultRegistry.Logger = logContrib
	httpmiddlewareloader.DefaultRegistry.Logger = log

	// SIGTERM/SIGINT cancel ctx. A SIGHUP restarts the runtime in place (that is
	// how daprd hot-reloads); each restart gets a fresh child context.
	ctx := signals.Context()
	restarts := signals.OnHUP(ctx)
	for {
		select {
		case <-ctx.Done():
			log.Info("Daprd shutdown gracefully")
			return
		case runCtx, ok := <-restarts:
			if !ok {
				log.Info("Daprd shutdown gracefully")
				return
			}
			if err := run(runCtx, opts); err != nil {
				log.Fatalf("Fatal error from runtime: %s", err)
			}
			// The runtime returned on its own (shutdown API), not because of a
			// signal: exit instead of waiting for a SIGHUP that will never come.
			if runCtx.Err() == nil {
				return
			}
		}
	}
}

func run(ctx context.Context, opts *options.Options) error {
	reg := registry.NewOptions().
		WithSecretStores(secretstoresloader.DefaultRegistry).
		WithStateStores(stateloader.DefaultRegistry).
		WithConfigurations(configurationloader.DefaultRegistry).
		WithLocks(lockloader.DefaultRegistry).
		WithPubSubs(pubsubloader.DefaultRegistry).
		WithNameResolutions(nrloader.DefaultRegistry).
		WithBindings(bindingsloader.DefaultRegistry).
		WithCryptoProviders(cryptoloader.DefaultRegistry).
		WithHTTPMiddlewares(httpmiddlewareloader.DefaultRegistry).
		WithConversations(conversationloader.DefaultRegistry)

	health := healthz.New()
	secProvider, err := security.New(ctx, security.Options{
		SentryAddress:           opts.SentryAddress,
		ControlPlaneTrustDomain: opts.ControlPlaneTrustDomain,
		ControlPlaneNamespace:   opts.ControlPlaneNamespace,
		TrustAnchors:            opts.TrustAnchors,
		AppID:                   opts.AppID,
		MTLSEnabled:             opts.EnableMTLS,
		Mode:                    modes.DaprMode(opts.Mode),
		Healthz:                 health,
		JwtAudiences:            opts.SentryRequestJwtAudiences,
	})
	if err != nil {
		return err
	}

	return concurrency.NewRunnerManager(
		secProvider.Run,
		func(ctx context.Context) error {
			sec, err := secProvider.Handler(ctx)
			if err != nil {
				return err
			}
			rt, err := runtime.FromConfig(ctx, runtimeConfig(opts, reg, sec, health))
			if err != nil {
				return err
			}
			return rt.Run(ctx)
		},
	).Run(ctx)
}

func runtimeConfig(opts *options.Options, reg *registry.Options, sec security.Handler, health healthz.Healthz) *runtime.Config {
	return &runtime.Config{
		AppID:                         opts.AppID,
		ActorsService:                 opts.ActorsService,
		ActorsDisseminationTimeout:    opts.ActorsDisseminationTimeout,
		HotReloadReconcileInterval:    opts.HotReloadReconcileInterval,
		RemindersService:              opts.RemindersService,
		SchedulerAddress:              opts.SchedulerAddress,
		SchedulerStreams:              opts.SchedulerJobStreams,
		AllowedOrigins:                opts.AllowedOrigins,
		ResourcesPath:                 opts.ResourcesPath,
		ControlPlaneAddress:           opts.ControlPlaneAddress,
		AppProtocol:                   opts.AppProtocol,
		Mode:                          opts.Mode,
		DaprHTTPPort:                  opts.DaprHTTPPort,
		DaprInternalGRPCPort:          opts.DaprInternalGRPCPort,
		DaprInternalGRPCListenAddress: opts.DaprInternalGRPCListenAddress,
		DaprAPIGRPCPort:               opts.DaprAPIGRPCPort,
		DaprAPIListenAddresses:        opts.DaprAPIListenAddresses,
		DaprPublicPort:                opts.DaprPublicPort,
		DaprPublicListenAddress:       opts.DaprPublicListenAddress,
		ApplicationPort:               opts.AppPort,
		ProfilePort:                   opts.ProfilePort,
		EnableProfiling:               opts.EnableProfiling,
		AppMaxConcurrency:             opts.AppMaxConcurrency,
		EnableMTLS:                    opts.EnableMTLS,
		SentryAddress:                 opts.SentryAddress,
		MaxRequestSize:                opts.MaxRequestSize,
		ReadBufferSize:                opts.ReadBufferSize,
		UnixDomainSocket:              opts.UnixDomainSocket,
		DaprGracefulShutdownSeconds:   opts.DaprGracefulShutdownSeconds,
		DaprBlockShutdownDuration:     opts.DaprBlockShutdownDuration,
		DisableBuiltinK8sSecretStore:  opts.DisableBuiltinK8sSecretStore,
		EnableAppHealthCheck:          opts.EnableAppHealthCheck,
		AppHealthCheckPath:            opts.AppHealthCheckPath,
		AppHealthProbeInterval:        opts.AppHealthProbeInterval,
		AppHealthProbeTimeout:         opts.AppHealthProbeTimeout,
		AppHealthThreshold:            opts.AppHealthThreshold,
		AppChannelAddress:             opts.AppChannelAddress,
		EnableAPILogging:              opts.EnableAPILogging,
		Config:                        opts.Config,
		DisableInitEndpoints:          opts.DisableInitEndpoints,
		Metrics: metrics.Options{
			Enabled:       opts.Metrics.Enabled(),
			Log:           log,
			Port:          opts.Metrics.Port(),
			Namespace:     metrics.DefaultMetricNamespace,
			Healthz:       health,
			ListenAddress: opts.Metrics.ListenAddress(),
			Meter:         view.NewMeter(),
		},
		AppSSL:         opts.AppSSL,
		ComponentsPath: opts.ComponentsPath,
		Registry:       reg,
		Security:       sec,
		Healthz:        health,
	}
}
