using System.Diagnostics;
using System.Net.Http.Headers;
using Ams.Testing;
using MySqlConnector;

namespace Ams.Bench;

/// <summary>
/// Attachments (issue 13): upload and download throughput of one 25 MiB file against the raw
/// floor (the same bytes in 256 KiB rows written to and read from MariaDB with no crypto and no
/// HTTP), and the node's peak RSS above idle during ten parallel 25 MiB uploads.
/// </summary>
static class AttachmentScenarios
{
    const int ChunkSize = 256 * 1024;
    const long RssBudget = 64L * 1024 * 1024;

    public static async Task<Result> RunAsync(AppProcess node, string mariaDb, bool smoke)
    {
        var size = smoke ? 2 * 1024 * 1024 : 25 * 1024 * 1024;
        var rounds = smoke ? 1 : 3;
        var parallel = smoke ? 2 : 10;
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        double MBps(TimeSpan t) => size / 1e6 / t.TotalSeconds;

        var (_, token) = await Client.UserAsync(node.BaseAddress, "f");
        using var client = Client.For(node.BaseAddress, token);
        client.Timeout = TimeSpan.FromMinutes(5);
        var uploads = new List<TimeSpan>();
        var downloads = new List<TimeSpan>();
        for (var round = 0; round < rounds; round++)
        {
            var started = Stopwatch.StartNew();
            var id = await UploadAsync(client, bytes);
            uploads.Add(started.Elapsed);
            started.Restart();
            using var response = await client.GetAsync($"/api/attachments/{id}", HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await using (var body = await response.Content.ReadAsStreamAsync())
            {
                var total = 0L;
                var buffer = new byte[81920];
                int read;
                while ((read = await body.ReadAsync(buffer)) > 0) total += read;
                if (total != size) throw new InvalidOperationException($"download returned {total} of {size} bytes");
            }
            downloads.Add(started.Elapsed);
        }
        var (floorWrite, floorRead) = await FloorAsync(mariaDb, bytes, rounds);

        // Peak RSS: sampled every 10 ms from just before ten users upload at once until all are stored.
        var users = new List<string>();
        for (var i = 0; i < parallel; i++) users.Add((await Client.UserAsync(node.BaseAddress, "p")).Token);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var idle = node.ResidentBytes();
        var peak = idle;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, node.ResidentBytes());
                try { await Task.Delay(10, sampling.Token); } catch (OperationCanceledException) { }
            }
        });
        var parallelStarted = Stopwatch.StartNew();
        await Task.WhenAll(users.Select(async t =>
        {
            using var c = Client.For(node.BaseAddress, t);
            c.Timeout = TimeSpan.FromMinutes(5);
            await UploadAsync(c, bytes);
        }));
        var parallelTime = parallelStarted.Elapsed;
        await sampling.CancelAsync();
        await sampler;
        var above = peak - idle;

        var best = (Upload: uploads.Min(), Download: downloads.Min());
        Console.WriteLine($"attachments: upload {MBps(best.Upload):F1} MB/s, download {MBps(best.Download):F1} MB/s; " +
                          $"floor write {MBps(floorWrite):F1} MB/s, read {MBps(floorRead):F1} MB/s; " +
                          $"{parallel} parallel uploads in {parallelTime.TotalSeconds:F1} s, RSS idle {idle / 1048576.0:F1} MiB, peak +{above / 1048576.0:F1} MiB");
        var failures = new List<string>();
        if (!smoke && above > RssBudget)
            failures.Add($"peak RSS {above / 1048576.0:F1} MiB above idle during {parallel} parallel uploads: over the 64 MiB budget");
        var mib = size / 1048576;
        return new Result("Attachments", $"one {mib} MiB file over HTTP (best of {rounds}) against the floor: the same bytes as 256 KiB rows INSERTed into and SELECTed from MariaDB on one connection, no crypto, no HTTP",
            null,
            [
                ("upload MB/s", $"{MBps(best.Upload):F1}"),
                ("download MB/s", $"{MBps(best.Download):F1}"),
                ("floor write MB/s", $"{MBps(floorWrite):F1}"),
                ("floor read MB/s", $"{MBps(floorRead):F1}"),
                ("upload % of floor", $"{100 * floorWrite.TotalSeconds / best.Upload.TotalSeconds:F0} %"),
                ("download % of floor", $"{100 * floorRead.TotalSeconds / best.Download.TotalSeconds:F0} %"),
                ($"{parallel} parallel {mib} MiB uploads", $"{parallelTime.TotalSeconds:F1} s"),
                ("node RSS idle", $"{idle / 1048576.0:F1} MiB"),
                ($"peak RSS above idle ({parallel} parallel uploads; budget 64 MiB)", $"{above / 1048576.0:F1} MiB"),
            ], failures) { ResidentBytes = peak };
    }

    static async Task<string> UploadAsync(HttpClient client, byte[] bytes)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StreamContent(new MemoryStream(bytes, writable: false), 81920), "file", "bench.bin");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/attachments") { Content = form };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        if ((int)response.StatusCode != 201) throw new InvalidOperationException($"upload: {(int)response.StatusCode} {text}");
        return System.Text.Json.Nodes.JsonNode.Parse(text)!["id"]!.GetValue<string>();
    }

    /// <summary>The best of <paramref name="rounds"/> raw writes and reads of the same bytes in 256 KiB rows.</summary>
    static async Task<(TimeSpan Write, TimeSpan Read)> FloorAsync(string mariaDb, byte[] bytes, int rounds)
    {
        await using var connection = new MySqlConnection(mariaDb);
        await connection.OpenAsync();
        await new MySqlCommand("""
            CREATE TABLE IF NOT EXISTS bench_chunks (file_id BIGINT UNSIGNED NOT NULL, idx INT UNSIGNED NOT NULL, data MEDIUMBLOB NOT NULL,
            PRIMARY KEY (file_id, idx)) ENGINE=InnoDB
            """, connection).ExecuteNonQueryAsync();
        var (write, read) = (TimeSpan.MaxValue, TimeSpan.MaxValue);
        var buffer = new byte[ChunkSize];
        for (var round = 0; round < rounds; round++)
        {
            var started = Stopwatch.StartNew();
            var chunks = (bytes.Length + ChunkSize - 1) / ChunkSize;
            for (var i = 0; i < chunks; i++)
            {
                await using var insert = new MySqlCommand("INSERT INTO bench_chunks (file_id, idx, data) VALUES (@f, @i, @d)", connection);
                insert.Parameters.AddWithValue("@f", round);
                insert.Parameters.AddWithValue("@i", i);
                insert.Parameters.AddWithValue("@d", new ArraySegment<byte>(bytes, i * ChunkSize, Math.Min(ChunkSize, bytes.Length - i * ChunkSize)));
                await insert.ExecuteNonQueryAsync();
            }
            write = TimeSpan.FromTicks(Math.Min(write.Ticks, started.Elapsed.Ticks));
            started.Restart();
            for (var i = 0; i < chunks; i++)
            {
                await using var select = new MySqlCommand("SELECT data FROM bench_chunks WHERE file_id = @f AND idx = @i", connection);
                select.Parameters.AddWithValue("@f", round);
                select.Parameters.AddWithValue("@i", i);
                await using var reader = await select.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess);
                await reader.ReadAsync();
                reader.GetBytes(0, 0, buffer, 0, buffer.Length);
            }
            read = TimeSpan.FromTicks(Math.Min(read.Ticks, started.Elapsed.Ticks));
        }
        await new MySqlCommand("DROP TABLE bench_chunks", connection).ExecuteNonQueryAsync();
        return (write, read);
    }
}
