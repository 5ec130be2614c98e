"""Package and module attribution rules (pure logic)."""

import pytest

from gohook.gosym.names import STD, ModuleResolver, infer_module_path, is_std_package, package_of


@pytest.mark.parametrize(
    ("name", "pkg"),
    [
        ("main.main", "main"),
        ("main.main.func1", "main"),
        ("runtime.gcBgMarkWorker.func1", "runtime"),
        ("net/http.(*Transport).roundTrip", "net/http"),
        ("github.com/acme/go%2estrutil.Upper", "github.com/acme/go.strutil"),
        ("github.com/acme/x.Map[go.shape.int,go.shape.string]", "github.com/acme/x"),
        ("github.com/acme/x.F[github.com/other/y.T].func1", "github.com/acme/x"),
        ("github.com/acme/x.(*List[go.shape.struct { a/b.c int }]).Push", "github.com/acme/x"),
        ("vendor/golang.org/x/net/http2/hpack.(*Decoder).Write", "vendor/golang.org/x/net/http2/hpack"),
        ("gopkg.in/yaml%2ev3.Unmarshal", "gopkg.in/yaml.v3"),
        ("reflect.(*ptrType).internal/abi.Uncommon", "reflect"),
        ("github.com/a/b.(*T).github.com/c/d.M", "github.com/a/b"),
        ("type:.eq.[2]interface {}", None),
        ("go:buildid", None),
        ("go.buildid", None),
        ("type..eq.main.T", None),
        ("type..eq.[2]net/http.T", None),
        ("type..eq.go.evil.example/x.T", None),  # `..` is an empty label: no host
        ("type..hash.[39]vendor/golang.org/x/sys/cpu.option", None),
        ("go.(*struct { sync.Mutex; net/http.Handler }).Lock", None),
        ("go.struct { sync.Mutex }.Lock", None),
        ("go:(*struct { encoding/json/v2.Marshaler }).MarshalJSON", None),
        ("go:textfipsstart", None),
        ("_rt0_amd64_linux", None),
        # module paths that start like pre-1.20 linker names are packages on every release
        ("go.uber.org/zap.(*Logger).Info", "go.uber.org/zap"),
        ("go.etcd.io/bbolt.Open", "go.etcd.io/bbolt"),
        ("go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor).processQueue.func1",
         "go.opentelemetry.io/otel/sdk/trace"),
        ("go.yaml.in/yaml/v3.Unmarshal", "go.yaml.in/yaml/v3"),
        ("go.mongodb.org/mongo-driver/mongo.Connect", "go.mongodb.org/mongo-driver/mongo"),
        ("go.evil.example/telemetry.init.0", "go.evil.example/telemetry"),
        ("type.example.com/x.F", "type.example.com/x"),
        ("go.shape.example/x.F[go.shape.int]", "go.shape.example/x"),
    ],
)
def test_package_of(name: str, pkg: str | None) -> None:
    assert package_of(name) == pkg


@pytest.mark.parametrize(
    ("pkg", "std"),
    [("net/http", True), ("vendor/golang.org/x/net/dns", True), ("main", False), ("example.com/a", False)],
)
def test_is_std_package(pkg: str, std: bool) -> None:
    assert is_std_package(pkg) is std


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("github.com/acme/x/sub/pkg", "github.com/acme/x"),
        ("github.com/acme/x/v2/pkg", "github.com/acme/x/v2"),
        ("golang.org/x/text/width", "golang.org/x/text"),
        ("gopkg.in/yaml.v3", "gopkg.in/yaml.v3"),
        ("gopkg.in/acme/yaml.v2/inner", "gopkg.in/acme/yaml.v2"),
        ("go.uber.org/zap/zapcore", "go.uber.org/zap"),
        ("k8s.io/client-go/rest", "k8s.io/client-go"),
    ],
)
def test_infer_module_path(path: str, module: str) -> None:
    assert infer_module_path(path) == module


def test_resolver_longest_match_and_main() -> None:
    r = ModuleResolver("example.com/app", ["example.com/app", "github.com/acme/mono", "github.com/acme/mono/sub"])
    assert r.module_of_package("github.com/acme/mono/sub").path == "github.com/acme/mono/sub"
    assert r.module_of_package("github.com/acme/mono/sub/deep").path == "github.com/acme/mono/sub"
    assert r.module_of_package("github.com/acme/mono/subway").path == "github.com/acme/mono"
    assert r.module_of_package("main").path == "example.com/app"
    assert r.module_of_package("example.com/app/internal/x").path == "example.com/app"
    assert r.module_of_package("fmt").path == STD
    assert r.module_of_package(None).path == STD


def test_resolver_gopath_vendor_inference() -> None:
    r = ModuleResolver("", [], "example.com/vendored")
    ref = r.module_of_package("example.com/vendored/vendor/github.com/acme/x/inner")
    assert (ref.path, ref.inferred) == ("github.com/acme/x", True)
    assert r.module_of_package("example.com/vendored/vendor/golang.org/x/text/width").path == "golang.org/x/text"
    assert r.module_of_package("main").inferred
    assert r.inferred_modules == {"github.com/acme/x", "golang.org/x/text"}
