package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// slowWriter dials addr, writes head at once, then trickle one byte per
// second until the server cuts the connection off. It returns the
// connection; cutOff waits for the server to end it.
func slowWriter(t *testing.T, addr, head, trickle string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range len(trickle) {
			time.Sleep(time.Second)
			if _, err := c.Write([]byte{trickle[i]}); err != nil {
				return
			}
		}
	}()
	return c
}

// cutOff fails unless the server ends c (closes it, or answers and closes)
// before a generous deadline far shorter than the client's trickle.
func cutOff(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the server still holds the connection after 20s", what)
	}
}

// Slow clients (slowloris: headers or body one byte per second) are cut off
// by the server's timeouts, and other requests are served meanwhile.
func TestSlowClientsAreCutOff(t *testing.T) {
	bodyErr := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
		if err != nil {
			httpapi.WriteError(w, httpapi.BadRequest("bad_body", "request body: "+err.Error()))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s, err := httpapi.New(httpapi.Config{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second},
		httpapi.Deps{Handler: mux})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(s.URL() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	filler := "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
	headers := slowWriter(t, s.Addr(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", filler)
	body := slowWriter(t, s.Addr(),
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 62\r\n\r\n", filler)

	// Another client is served while both are trickling.
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatalf("request beside the slow clients: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}

	cutOff(t, headers, "slow headers")
	cutOff(t, body, "slow body")
	select {
	case err := <-bodyErr:
		if err == nil {
			t.Fatal("the slow body was read to the end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upload handler never returned")
	}
}
