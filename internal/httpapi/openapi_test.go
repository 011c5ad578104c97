package httpapi

import (
	"io"
	"net/http"
	"slices"
	"testing"
)

func TestRouterRecordsRoutes(t *testing.T) {
	app := NewRouter()
	app.Handle("POST /things", http.NotFoundHandler())
	app.HandleFunc("GET /things/{id}", http.NotFound)
	app.Handle("GET /openapi.json", ServeDocument([]byte(`{"openapi":"3.1.0"}`)))
	s, err := New(Config{}, Deps{Handler: app})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	want := []string{"GET /healthz", "GET /metrics", "GET /openapi.json", "GET /readyz", "GET /things/{id}", "POST /things"}
	if got := s.Routes(); !slices.Equal(got, want) {
		t.Fatalf("Routes() = %v, want %v", got, want)
	}

	// The document is served as JSON, without a token, and HEAD has no body.
	res, err := http.Get(s.URL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || string(b) != `{"openapi":"3.1.0"}` {
		t.Fatalf("GET /openapi.json: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), b)
	}

	// An app that is not a Router hides its routes behind "/": Routes
	// says so instead of pretending the server has none.
	plain, err := New(Config{}, Deps{Handler: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	plain.Start()
	defer plain.Close()
	if got := plain.Routes(); !slices.Contains(got, "/") {
		t.Fatalf("Routes() of a plain app = %v, want it to contain \"/\"", got)
	}
}

func TestSplitRoute(t *testing.T) {
	for in, want := range map[string][2]string{
		"GET /a/{id}": {"GET", "/a/{id}"},
		"/":           {"", "/"},
		"DELETE  /x":  {"DELETE", "/x"},
	} {
		if m, p := SplitRoute(in); m != want[0] || p != want[1] {
			t.Errorf("SplitRoute(%q) = %q, %q", in, m, p)
		}
	}
}
